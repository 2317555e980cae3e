"""``sluice alarms list | get | history | set-state``."""

from __future__ import annotations

from urllib.parse import quote

import click
from rich.console import Console
from rich.table import Table

from sluicegate.cli._api import Api, api_options
from sluicegate.cli._format import emit, json_option, when

console = Console()
_COLOURS = {"OK": "green", "ALARM": "red", "INSUFFICIENT_DATA": "yellow"}


def _state(state: str | None) -> str:
    if state is None:
        return "-"
    return f"[{_COLOURS.get(state, 'white')}]{state}[/]"


def _path(alarm: str) -> str:
    service, sep, name = alarm.partition("/")
    if not sep or not service or not name:
        raise click.BadParameter(
            f"{alarm!r} is not SERVICE/NAME (e.g. shop/high-5xx)", param_hint="ALARM"
        )
    return f"/alarms/{quote(service, safe='')}/{quote(name, safe='')}"


@click.group()
def alarms() -> None:
    """Alarms: their state, why, and their history (docs/monitor.md)."""


@alarms.command("list")
@click.option("--service", "-s", default=None, help="Only this service's alarms.")
@json_option
@api_options
def alarms_list(service: str | None, as_json: bool, url: str, token: str | None) -> None:
    """Every alarm with its state and reason."""
    params = {"service": service} if service else None
    data = Api(url, token).call("GET", "/alarms", params=params)
    if as_json:
        emit(data)
        return
    table = Table("alarm", "state", "guard", "since", "reason")
    for a in data:
        table.add_row(
            a["id"],
            _state(a["state"]),
            "yes" if a["guard"] else "no",
            when(a["state_changed_at"]),
            a["reason"],
        )
    console.print(table)


@alarms.command("get")
@click.argument("alarm")
@json_option
@api_options
def alarms_get(alarm: str, as_json: bool, url: str, token: str | None) -> None:
    """One alarm (SERVICE/NAME): state, reason and the datapoints of its last evaluation."""
    a = Api(url, token).call("GET", _path(alarm))
    if as_json:
        emit(a)
        return
    head = Table(show_header=False, box=None)
    guard = "on" if a["guard"] else "off"
    head.add_row("alarm", f"[bold]{a['id']}[/] ({a['kind']}, guard {guard})")
    head.add_row("state", f"{_state(a['state'])} since {when(a['state_changed_at'])}")
    head.add_row("reason", a["reason"])
    head.add_row("evaluated", when(a["evaluated_at"]))
    if a["forced_until"] and a["forced_until"] > (a["evaluated_at"] or 0):
        head.add_row("forced until", when(a["forced_until"]))
    binding = a.get("binding") or {}
    if binding.get("revision_bound"):
        head.add_row(
            "watching", f"green {binding.get('green') or '-'}, blue {binding.get('blue') or '-'}"
        )
    console.print(head)
    judged = {p["timestamp"]: p for p in a["evaluation"].get("datapoints", [])}
    points = a["evaluation"].get("range") or list(judged.values())
    if points:
        table = Table("period start", "value", "samples", "judged")
        for p in points:
            value = "missing" if p["value"] is None else f"{p['value']:g}"
            j = judged.get(p["timestamp"])
            verdict = (
                "-"
                if j is None
                else ("[red]breaching[/]" if j["breaching"] else "ok")
                + (" (filled)" if j["filled"] else "")
            )
            table.add_row(when(p["timestamp"]), value, str(p["samples"]), verdict)
        console.print(table)
    for f in a["evaluation"].get("firing", []):
        console.print(f"firing: {f['fingerprint']} since {f['starts_at']} {f['summary']}")


@alarms.command("history")
@click.argument("alarm")
@click.option("--limit", default=100, show_default=True, help="The latest N changes.")
@json_option
@api_options
def alarms_history(alarm: str, limit: int, as_json: bool, url: str, token: str | None) -> None:
    """State changes of one alarm (SERVICE/NAME), oldest first, with who and why."""
    data = Api(url, token).call("GET", _path(alarm) + "/history", params={"limit": limit})
    if as_json:
        emit(data)
        return
    table = Table("time", "change", "by", "reason")
    for h in data:
        change = f"{_state(h['old_state'])} → {_state(h['new_state'])}"
        table.add_row(
            when(h["at"]), change + (" (set)" if h["forced"] else ""), h["actor"], h["reason"]
        )
    console.print(table)


@alarms.command("set-state")
@click.argument("alarm")
@click.option("--state", required=True, type=click.Choice(["OK", "ALARM", "INSUFFICIENT_DATA"]))
@click.option("--reason", required=True, help="Why (kept as the alarm's reason).")
@api_options
def alarms_set_state(alarm: str, state: str, reason: str, url: str, token: str | None) -> None:
    """Force an alarm's state, e.g. to test that ALARM rolls back (SetAlarmState).

    The state holds until the alarm's next evaluation at least one period later.
    """
    a = Api(url, token).call("POST", _path(alarm) + "/state", {"state": state, "reason": reason})
    console.print(
        f"{a['id']} is now {_state(a['state'])}"
        + (f" until at least {when(a['forced_until'])}" if a["forced_until"] else "")
    )


COMMANDS = [alarms]
