"""How ``sluice flags`` shows things: diffs, history, evaluations, rollouts (rich)."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from sluicegate.cli._format import when

__all__ = [
    "compact",
    "diff_lines",
    "evaluation",
    "exposure_table",
    "history_table",
    "rollout_view",
    "when",
]

_MARK = {"added": ("+", "green"), "removed": ("-", "red"), "changed": ("~", "yellow")}
_IDS_SHOWN = 5


_FLAG_DEFAULTS: dict[str, Any] = {
    "description": "",
    "enabled": True,
    "salt": "",
    "prerequisites": [],
    "rules": [],
}
_BOOLEAN_VARIANTS = {"on": True, "off": False}


def compact(document: dict[str, Any]) -> dict[str, Any]:
    """The stored normal form without the values that are defaults anyway, for editing:
    applying it again gives the same normal form (so it saves no new version)."""
    out = {k: v for k, v in document.items() if not (k == "description" and v == "")}
    out["segments"] = {
        name: {k: v for k, v in seg.items() if not (k == "description" and v == "")}
        for name, seg in document.get("segments", {}).items()
    }
    flags = {}
    for key, flag in document.get("flags", {}).items():
        f = {k: v for k, v in flag.items() if _FLAG_DEFAULTS.get(k, object()) != v}
        if f.get("type") == "boolean" and f.get("variants") == _BOOLEAN_VARIANTS:
            del f["variants"]
            if f.get("default_variant") == "off":
                del f["default_variant"]
        flags[key] = f
    out["flags"] = flags
    if not out["segments"]:
        del out["segments"]
    return out


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _field(f: dict[str, Any]) -> str:
    if f["change"] == "ids":
        added, removed = f["added"], f["removed"]
        n_added, n_removed = f.get("added_count", len(added)), f.get("removed_count", len(removed))
        shown = ", ".join(
            [*(f"+{i}" for i in added[:_IDS_SHOWN]), *(f"-{i}" for i in removed[:_IDS_SHOWN])]
        )
        more = (
            " …"
            if n_added + n_removed > len(added[:_IDS_SHOWN]) + len(removed[:_IDS_SHOWN])
            else ""
        )
        return f"{f['path']}: +{n_added} -{n_removed} ids ({shown}{more})"
    if f["change"] == "added":
        return f"{f['path']}: added {_short(f['new'])}"
    if f["change"] == "removed":
        return f"{f['path']}: removed (was {_short(f['old'])})"
    return f"{f['path']}: {_short(f['old'])} → {_short(f['new'])}"


def diff_lines(
    changes: list[dict[str, Any]], description: dict[str, Any] | None = None
) -> list[Text]:
    """``+ flag x`` / ``- segment y`` / ``~ flag z`` with each changed field below."""
    lines: list[Text] = []
    if description:
        lines.append(
            Text(
                f"~ description: {_short(description['old'])} → {_short(description['new'])}",
                style="yellow",
            )
        )
    for c in changes:
        mark, style = _MARK[c["change"]]
        lines.append(Text(f"{mark} {c['kind']} {c['key']}", style=f"bold {style}"))
        lines.extend(Text(f"    {_field(f)}") for f in c.get("fields", []))
    return lines or [Text("no changes", style="dim")]


def history_table(env: str, rows: list[dict[str, Any]]) -> Table:
    table = Table("version", "status", "saved (UTC)", "by", "message", title=f"flag set {env}")
    styles = {"current": "bold green", "rolled back": "red", "stopped": "red"}
    for r in rows:
        status = r["status"]
        style = "yellow" if status.startswith("rolling") else styles.get(status, "")
        table.add_row(
            str(r["version"]),
            Text(status, style=style),
            when(r["created_at"]),
            r["actor"],
            r["message"] or "",
        )
    return table


def _rollout_line(rollout: dict[str, Any] | None) -> str | None:
    if rollout is None:
        return None
    side = "in" if rollout["gets_new_version"] else "outside"
    chosen = rollout["to_version"] if rollout["gets_new_version"] else rollout["from_version"]
    return (
        f"rollout {rollout['id']} v{rollout['from_version']} → v{rollout['to_version']} at "
        f"{rollout['percent']:g} %: this context is {side} the new version's share, so it "
        f"gets v{chosen}"
    )


def evaluation(result: dict[str, Any]) -> list[str]:
    """An evaluation for people: the value and why, and which version answered."""
    line = _rollout_line(result.get("rollout"))
    if result.get("text"):  # explained
        head, *rest = result["text"].splitlines()
        lines = [f"{head}  [{result['env']} v{result['version']}]", *rest]
    else:
        r = result
        variant = f"variant {r['variant']!r}, " if r["variant"] is not None else ""
        lines = [
            f"{r['flag']} = {r['value']!r}  ({variant}reason {r['reason']}, "
            f"{r['env']} v{r['version']})"
        ]
        if r["error_code"]:
            lines.append(f"  {r['error_code']}: {r['error_message']}")
    return [*lines, line] if line else lines


def rollout_view(r: dict[str, Any]) -> Group:
    table = Table(show_header=False, box=None)
    phase = r["phase"].replace("_", " ")
    table.add_row("rollout", f"{r['id']}  {r['env']} v{r['from_version']} → v{r['to_version']}")
    table.add_row("phase", f"[bold]{phase}[/]" + (f" ({r['reason']})" if r["reason"] else ""))
    pct = int(r["percent"])
    bar = "█" * (pct // 5) + "░" * (20 - pct // 5)
    table.add_row("users", f"{100 - pct}% v{r['from_version']}  {bar}  {pct}% v{r['to_version']}")
    step = f"{min(r['step'], r['steps'])} of {r['steps']} ({r['plan']})"
    if r.get("next_step_in") is not None:
        step += f", next in {r['next_step_in']:.0f}s"
    table.add_row("step", step)
    table.add_row("alarms", ", ".join(r["alarms"]) or "none (nothing reverts it automatically)")
    out: list[Any] = [table]
    if r.get("events"):
        events = Table("time (UTC)", "event", "message", box=None)
        for e in r["events"][-8:]:
            events.add_row(when(e["at"])[11:], e["kind"].removeprefix("flags."), e["message"])
        out += [Text(""), events]
    return Group(*out)


def exposure_table(data: dict[str, Any]) -> Table:
    """Evaluations per flag x variant, each variant's share of its flag, when last seen."""
    per_flag: dict[str, int] = {}
    for v in data["variants"]:
        per_flag[v["flag"]] = per_flag.get(v["flag"], 0) + v["count"]
    table = Table(
        "flag",
        "variant",
        "evaluations",
        "share",
        "last seen (UTC minute)",
        title=f"exposures {data['env']} since {when(data['since'])}",
    )
    for v in data["variants"]:
        share = v["count"] / per_flag[v["flag"]] * 100 if per_flag[v["flag"]] else 0.0
        variant = Text(
            v["variant"] or "-", style="red" if v["variant"].startswith("error:") else ""
        )
        table.add_row(v["flag"], variant, str(v["count"]), f"{share:.1f} %", when(v["last_minute"]))
    agents = data.get("agents", [])
    if agents:
        table.caption = f"reported by {len(agents)} agent process(es): " + ", ".join(
            sorted({a["agent"] for a in agents})
        )
    if not data["variants"]:
        table.caption = "no evaluations reported (are agents running with a key?)"
    return table
