"""How a deployment is shown (a live view) and followed (``--watch``), and the exit codes
that tell a script how it ended."""

from __future__ import annotations

import sys
import time
from typing import Any, NoReturn

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from sluicegate.cli._api import Api
from sluicegate.cli._format import emit, when

__all__ = ["EXIT_CODES", "WATCH_EXIT_HELP", "clock", "deployment_view", "watch"]

console = Console()

# How ``--watch`` exits, by the phase the deployment ended in; 2 (an error talking to the
# server, or bad input) comes from ``sluicegate.cli._main.main``.
EXIT_CODES = {"succeeded": 0, "rolled_back": 3, "failed": 4, "stopped": 5}
WATCH_EXIT_HELP = (
    "With --watch, exit 0 only when the deployment succeeded; 3 when it was "
    "rolled back, 4 when it failed, 5 when it was stopped; 2 on an error "
    "talking to the server or bad input. With --watch --json, nothing is printed until "
    "it ends, then the final deployment (as `deployments get --json` prints it)."
)


def clock(ts: float) -> str:
    """An epoch time as ``HH:MM:SS`` (UTC)."""
    return when(ts)[11:]


def deployment_view(dep: dict[str, Any]) -> Group:
    """A deployment's public fields (the API's ``Deployment``) as a live view."""
    table = Table(show_header=False, box=None)
    reason = dep.get("reason")
    table.add_row("phase", f"[bold]{dep['phase']}[/]" + (f" ({reason})" if reason else ""))
    table.add_row("revisions", f"{dep['from_revision'] or '-'} → {dep['revision']}")
    green = dep.get("green_weight", 0)
    bar = "█" * (green // 5) + "░" * (20 - green // 5)
    table.add_row("traffic", f"{100 - green}% blue  {bar}  {green}% green")
    if dep["from_revision"] is None:  # a first deployment takes no steps (see its plan)
        step = "all traffic at once (first deployment)"
    else:
        step = str(dep.get("step_index", 0) + 1)
        if dep.get("step_count"):
            step += f" of {dep['step_count']}"
        if dep.get("plan_name"):
            step += f" ({dep['plan_name']})"
        if dep.get("next_step_in") is not None:
            step += f"  next in {dep['next_step_in']:.0f}s"
    table.add_row("step", step)
    if dep.get("holding"):
        table.add_row("holding", dep["holding"])
    for revision, replicas in (dep.get("replicas") or {}).items():
        marks = " ".join("[green]●[/]" if r["healthy"] else "[red]●[/]" for r in replicas)
        table.add_row(f"replicas {revision}", marks)
    if not dep.get("events"):  # a Deployment without its events (GET /services/NAME)
        return Group(table)
    events = Table("time", "event", "message", box=None)
    for e in dep["events"][-8:]:
        events.add_row(clock(e["at"]), e["kind"], e["message"])
    return Group(table, Text(""), events)


def _ended(dep: dict[str, Any]) -> bool:
    return dep["phase"] in EXIT_CODES or not dep["active"]


def watch(api: Api, dep_id: str, *, as_json: bool = False) -> NoReturn:
    """Follow the deployment until it ends, then say how and why (or, ``as_json``, print
    the final deployment as the API answers it) and exit with its code (``EXIT_CODES``)."""
    if as_json:
        while not _ended(dep := api.call("GET", f"/deployments/{dep_id}")):
            time.sleep(0.5)
        emit(dep)
        sys.exit(_code(dep))
    with Live(console=console, refresh_per_second=4) as live:
        while True:
            dep = api.call("GET", f"/deployments/{dep_id}")
            live.update(deployment_view(dep))
            if _ended(dep):
                break
            time.sleep(0.5)
    if not console.is_terminal:  # Live ends its last frame with a newline only on a terminal
        console.line()
    phase, reason = dep["phase"], dep.get("reason")
    code = _code(dep)
    how = phase.replace("_", " ") if phase in EXIT_CODES else f"ended in phase {phase}"
    console.print(
        f"deployment {dep_id} {how}" + (f": {reason}" if reason else ""),
        style="green" if code == 0 else "bold red",
        markup=False,
        highlight=False,
    )
    sys.exit(code)


def _code(dep: dict[str, Any]) -> int:
    return EXIT_CODES.get(dep["phase"], EXIT_CODES["failed"])
