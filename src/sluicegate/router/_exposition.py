"""Render merged metric snapshots as the admin API's JSON and as Prometheus text (pure)."""

from __future__ import annotations

from typing import Any

from sluicegate.router._histogram import PROM_BOUNDS, percentile, prometheus_buckets
from sluicegate.router._metrics import Counts

__all__ = ["prometheus_text", "summarize"]

# latency_sum (seconds) lets the monitor compute an exact Average latency per second.
_KEYS = ("requests", "1xx", "2xx", "3xx", "4xx", "5xx", "router_502", "router_504", "latency_sum")


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 3)


def _point(t: int, data: dict[str, Any], c: Counts, hist: bool) -> dict[str, Any]:
    """One second of a series as the admin API shows it."""
    point = {"t": t, **{k: data[k] for k in _KEYS}, "p99_ms": _ms(percentile(c.hist, 0.99))}
    if hist:
        point["hist"] = data["hist"]
    return point


def summarize(
    snapshot: dict[str, Any],
    window: int,
    hist: bool = False,
    listener: str | None = None,
    include_open: bool = False,
) -> dict[str, Any]:
    """Per series: sums over the last ``window`` closed seconds, percentiles, per-second points
    (with their latency histograms when ``hist``, for the monitor's judgement). With
    ``include_open`` the still-counting current second is the last point, marked
    ``"open": true`` (not in the sums)."""
    out = []
    for s in snapshot["series"]:
        if listener is not None and s["listener"] != listener:
            continue
        total = Counts()
        points = []
        for t, data in s["seconds"]:
            c = Counts.from_json(data)
            total.add(c)
            points.append(_point(t, data, c, hist))
        opened = s.get("open")
        if include_open and opened and opened["requests"]:
            point = _point(snapshot["current_second"], opened, Counts.from_json(opened), hist)
            point["open"] = True
            points.append(point)
        summary: dict[str, Any] = {
            "listener": s["listener"],
            "target_group": s["target_group"],
            **{k: v for k, v in total.to_json().items() if k in _KEYS},
            "p50_ms": _ms(percentile(total.hist, 0.50)),
            "p90_ms": _ms(percentile(total.hist, 0.90)),
            "p99_ms": _ms(percentile(total.hist, 0.99)),
            "mean_ms": _ms(total.latency_sum / total.requests) if total.requests else None,
            "seconds": points,
        }
        out.append(summary)
    return {"window": window, "current_second": snapshot["current_second"], "series": out}


def _labels(s: dict[str, Any]) -> str:
    return f'listener="{s["listener"]}",target_group="{s["target_group"]}"'


def prometheus_text(snapshot: dict[str, Any], status: dict[str, Any]) -> str:
    """Text exposition format 0.0.4: counters since start, a latency histogram, gauges."""
    lines = [
        "# HELP sluicegate_router_requests_total Requests answered, by status class.",
        "# TYPE sluicegate_router_requests_total counter",
    ]
    series = snapshot["series"]
    for s in series:
        t = s["total"]
        for cls in ("1xx", "2xx", "3xx", "4xx", "5xx"):
            lines.append(f'sluicegate_router_requests_total{{{_labels(s)},code="{cls}"}} {t[cls]}')
    lines += [
        "# HELP sluicegate_router_errors_total Errors the router generated itself.",
        "# TYPE sluicegate_router_errors_total counter",
    ]
    for s in series:
        t = s["total"]
        lines.append(f'sluicegate_router_errors_total{{{_labels(s)},code="502"}} {t["router_502"]}')
        lines.append(f'sluicegate_router_errors_total{{{_labels(s)},code="504"}} {t["router_504"]}')
    lines += [
        "# HELP sluicegate_router_request_duration_seconds Time from request head to response end.",
        "# TYPE sluicegate_router_request_duration_seconds histogram",
    ]
    for s in series:
        t = s["total"]
        cumulative = prometheus_buckets((int(i), n) for i, n in t["hist"].items())
        for bound, n in zip(PROM_BOUNDS, cumulative, strict=False):
            lines.append(
                f"sluicegate_router_request_duration_seconds_bucket{{{_labels(s)},"
                f'le="{bound}"}} {n}'
            )
        lines.append(
            f"sluicegate_router_request_duration_seconds_bucket{{{_labels(s)},"
            f'le="+Inf"}} {cumulative[-1]}'
        )
        lines.append(
            f"sluicegate_router_request_duration_seconds_sum{{{_labels(s)}}} {t['latency_sum']}"
        )
        lines.append(
            f"sluicegate_router_request_duration_seconds_count{{{_labels(s)}}} {t['requests']}"
        )
    lines += [
        "# HELP sluicegate_router_target_healthy 1 when a target passes its health checks.",
        "# TYPE sluicegate_router_target_healthy gauge",
    ]
    groups = status.get("groups", {})
    for gname, g in groups.items():
        for addr, t in g["targets"].items():
            lines.append(
                f'sluicegate_router_target_healthy{{target_group="{gname}",'
                f'target="{addr}"}} {int(t["healthy"])}'
            )
    lines += [
        "# HELP sluicegate_router_fail_open 1 when a group has no healthy target and routes "
        "to all.",
        "# TYPE sluicegate_router_fail_open gauge",
    ]
    for gname, g in groups.items():
        lines.append(f'sluicegate_router_fail_open{{target_group="{gname}"}} {int(g["fail_open"])}')
    lines += [
        "# HELP sluicegate_router_weight Current weight of a target group in a listener's "
        "default action.",
        "# TYPE sluicegate_router_weight gauge",
    ]
    for lname, listener in status.get("listeners", {}).items():
        for gname, w in listener["default"].items():
            lines.append(
                f'sluicegate_router_weight{{listener="{lname}",target_group="{gname}"}} {w}'
            )
    flags = status.get("flags")
    if flags is not None:
        version = -1 if flags["version"] is None else flags["version"]
        lines += [
            "# HELP sluicegate_router_flag_unmatched_total Flag conditions that did not match "
            "for want of a user id, a known flag, or a decision.",
            "# TYPE sluicegate_router_flag_unmatched_total counter",
        ]
        for reason, n in flags["unmatched"].items():
            lines.append(f'sluicegate_router_flag_unmatched_total{{reason="{reason}"}} {n}')
        lines += [
            "# HELP sluicegate_router_flag_set_version Version of the loaded flag set (-1: none).",
            "# TYPE sluicegate_router_flag_set_version gauge",
            f"sluicegate_router_flag_set_version {version}",
        ]
    return "\n".join(lines) + "\n"
