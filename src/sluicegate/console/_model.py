"""What the console's pages show, built from plain values (pure): overview rows, the
"needs action" rule, weight over time from a deployment's events, per-second chart series.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sluicegate.console._svg import Series
from sluicegate.monitor.canary import Judgement
from sluicegate.monitor.sources import Second
from sluicegate.router import percentile
from sluicegate.store import Event

__all__ = [
    "OverviewRow",
    "actual_weight",
    "needs_action",
    "overview_row",
    "second_series",
    "weight_history",
]

NEEDS_ACTION_PHASES = {"paused_until_promoted", "failed"}


@dataclass(frozen=True)
class OverviewRow:
    service: str
    stable: str | None  # the revision serving before (or without) a deployment
    in_flight: str | None  # the active deployment's revision
    deployment: str | None  # the active (else the latest) deployment's id
    phase: str
    step: str  # "n/m", or "-"
    set_weight: int
    actual_weight: float | None
    verdict: Judgement | None
    holding: str | None
    needs_action: str | None  # why a person should look, or None
    last_event: str
    last_event_at: float | None


def needs_action(view: Mapping[str, Any] | None) -> str | None:
    """Why a deployment needs a person: it is holding (no verdict yet past its pause),
    waits for promote, or failed. None when nothing is asked of anyone."""
    if view is None:
        return None
    if view.get("active") and view.get("holding"):
        return "holding: " + str(view["holding"])
    if view.get("phase") == "paused_until_promoted":
        return "waiting for promote"
    if view.get("phase") == "failed":
        return "failed: " + str(view.get("reason") or "see its events")
    return None


def overview_row(
    service: str,
    current: str | None,
    view: Mapping[str, Any] | None,
    *,
    actual: float | None,
    verdict: Judgement | None,
    last: Event | None,
) -> OverviewRow:
    """One service's row: ``view`` is its active deployment's public view, else its latest."""
    active = bool(view and view.get("active"))
    step = "-"
    if view and view.get("step_count"):
        shown = min(int(view["step_index"]) + 1, int(view["step_count"]))
        step = f"{shown}/{view['step_count']}" if active else f"{view['step_count']} steps"
    return OverviewRow(
        service=service,
        stable=(view.get("from_revision") if active and view else current),
        in_flight=view.get("revision") if active and view else None,
        deployment=view.get("id") if view else None,
        phase=str(view.get("phase")) if view else "no deployment",
        step=step,
        set_weight=int(view.get("green_weight", 0)) if active and view else 0,
        actual_weight=actual if active else None,
        verdict=verdict if active else None,
        holding=view.get("holding") if active and view else None,
        needs_action=needs_action(view),
        last_event=f"{last.kind}: {last.message}" if last else "-",
        last_event_at=last.at if last else None,
    )


def actual_weight(green: Sequence[Second], blue: Sequence[Second], last: int = 5) -> float | None:
    """Green's measured share of requests (%) over the newest ``last`` seconds that had any
    traffic; None without traffic."""
    by_t: dict[int, list[int]] = {}
    for i, series in enumerate((green, blue)):
        for s in series:
            by_t.setdefault(s.t, [0, 0])[i] += s.requests
    seconds = [counts for _, counts in sorted(by_t.items()) if sum(counts)][-last:]
    total = sum(sum(c) for c in seconds)
    return sum(c[0] for c in seconds) / total * 100 if total else None


_STEP = re.compile(r"green (\d+)%")
_TO_GREEN = {"deployment.traffic_shifted", "deployment.traffic", "deployment.promoted"}
_TO_BLUE = {"deployment.rollback", "deployment.rolled_back", "deployment.traffic_restored"}


def weight_history(events: Sequence[Event]) -> list[tuple[float, float | None]]:
    """Green's set weight (%) after each event that changed it, as step points, from a
    deployment's events (oldest first). The events carry no structured weight: it is read
    from their kinds and messages (``step 2 of 3: green 50%``)."""
    points: list[tuple[float, float | None]] = []
    weight = 0.0
    for e in events:
        new: float | None = None
        if e.kind == "deployment.created":
            new = 0.0
        elif e.kind == "deployment.step" and (m := _STEP.search(e.message)):
            new = float(m.group(1))
        elif e.kind in _TO_GREEN and (
            "all traffic" in e.message or e.kind != "deployment.promoted"
        ):
            new = 100.0
        elif e.kind in _TO_BLUE:
            new = 0.0
        if new is None:
            continue
        if points:
            points.append((e.at, weight))  # hold the old weight until now: a step line
        weight = new
        points.append((e.at, weight))
    return points


def second_series(green: Sequence[Second], blue: Sequence[Second]) -> dict[str, list[Series]]:
    """Per-second chart series for green vs blue: requests, 5xx share (%), p50 and p99
    latency (s). A second without requests is a gap."""
    out: dict[str, list[Series]] = {"requests": [], "errors": [], "p50": [], "p99": []}
    for name, colour, seconds in (("green", "green", green), ("blue", "blue", blue)):
        out["requests"].append(Series(name, colour, [(s.t, float(s.requests)) for s in seconds]))
        out["errors"].append(
            Series(
                name,
                colour,
                [(s.t, s.errors / s.requests * 100 if s.requests else None) for s in seconds],
            )
        )
        for key, q in (("p50", 0.5), ("p99", 0.99)):
            out[key].append(Series(name, colour, [(s.t, percentile(s.hist, q)) for s in seconds]))
    return out
