"""``sluice apply | deploy | status | promote | rollback | stop | events | logs | deployments``."""

from __future__ import annotations

import re
import sys
import time
from datetime import UTC, datetime
from typing import Any

import click
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from sluicegate.cli._api import Api, api_options
from sluicegate.spec import load_file
from sluicegate.spec.service import ServiceSpec

console = Console()

# How ``--watch`` exits, by the phase the deployment ended in; 2 (an error talking to the
# server, or bad input) comes from ``sluicegate.cli._main.main``.
EXIT_CODES = {"succeeded": 0, "rolled_back": 3, "failed": 4, "stopped": 5}
WATCH_EXIT_HELP = (
    "With --watch, exit 0 only when the deployment succeeded; 3 when it was "
    "rolled back, 4 when it failed, 5 when it was stopped; 2 on an error "
    "talking to the server or bad input."
)


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%H:%M:%S")


@click.command()
@click.option(
    "-f",
    "--file",
    "path",
    required=True,
    type=click.Path(dir_okay=False),
    help="Service spec (YAML).",
)
@api_options
def apply(path: str, url: str, token: str | None) -> None:
    """Declare or update a service from a spec file (validated first; nothing changes on error)."""
    spec = load_file(ServiceSpec, path)
    Api(url, token).call("PUT", f"/services/{spec.service}", spec.model_dump(mode="json"))
    console.print(f"service [bold]{spec.service}[/] applied")


@click.command(epilog=WATCH_EXIT_HELP)
@click.argument("service")
@click.option("--revision", "-r", required=True, help="The revision to deploy.")
@click.option(
    "--config",
    "config",
    default=None,
    help="A predefined deployment config name, overriding the spec's.",
)
@click.option(
    "--set",
    "settings",
    multiple=True,
    metavar="env.KEY=VALUE",
    help="An environment variable of this revision (repeatable).",
)
@click.option(
    "--watch/--no-watch",
    default=False,
    help="Follow the deployment live until it ends; the exit code says how.",
)
@api_options
def deploy(
    service: str,
    revision: str,
    config: str | None,
    settings: tuple[str, ...],
    watch: bool,
    url: str,
    token: str | None,
) -> None:
    """Start a blue/green deployment of REVISION; prints the plan first."""
    env: dict[str, str] = {}
    for item in settings:
        key, sep, value = item.partition("=")
        if not sep or not key.startswith("env.") or len(key) <= 4:
            raise click.BadParameter(f"{item!r} is not env.KEY=VALUE", param_hint="--set")
        env[key[4:]] = value
    api = Api(url, token)
    dep = api.call(
        "POST",
        f"/services/{service}/deployments",
        {"revision": revision, "config": config, "env": env},
    )
    console.print(
        f"deployment [bold]{dep['id']}[/]: {service} "
        f"{dep['from_revision'] or '(none)'} → {revision}"
    )
    for line in dep["plan"]:
        console.print(f"  {line}")
    if watch:
        _watch(api, dep["id"])


def _view(dep: dict[str, Any]) -> Group:
    """A deployment's public fields (the API's ``Deployment``) as a live view."""
    table = Table(show_header=False, box=None)
    reason = dep.get("reason")
    table.add_row("phase", f"[bold]{dep['phase']}[/]" + (f" ({reason})" if reason else ""))
    table.add_row("revisions", f"{dep['from_revision'] or '-'} → {dep['revision']}")
    green = dep.get("green_weight", 0)
    bar = "█" * (green // 5) + "░" * (20 - green // 5)
    table.add_row("traffic", f"{100 - green}% blue  {bar}  {green}% green")
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
    events = Table("time", "event", "message", box=None)
    for e in dep.get("events", [])[-8:]:
        events.add_row(_when(e["at"]), e["kind"], e["message"])
    return Group(table, Text(""), events)


def _watch(api: Api, dep_id: str) -> None:
    """Follow the deployment live until it ends, print how and why, and exit with its code
    (``EXIT_CODES``)."""
    with Live(console=console, refresh_per_second=4) as live:
        while True:
            dep = api.call("GET", f"/deployments/{dep_id}")
            live.update(_view(dep))
            if dep["phase"] in EXIT_CODES or not dep["active"]:
                break
            time.sleep(0.5)
    if not console.is_terminal:  # Live ends its last frame with a newline only on a terminal
        console.line()
    phase, reason = dep["phase"], dep.get("reason")
    code = EXIT_CODES.get(phase, EXIT_CODES["failed"])
    how = phase.replace("_", " ") if phase in EXIT_CODES else f"ended in phase {phase}"
    console.print(
        f"deployment {dep_id} {how}" + (f": {reason}" if reason else ""),
        style="green" if code == 0 else "bold red",
        markup=False,
        highlight=False,
    )
    sys.exit(code)


@click.command()
@click.argument("service")
@api_options
def status(service: str, url: str, token: str | None) -> None:
    """A service's current revision and its active deployment."""
    data = Api(url, token).call("GET", f"/services/{service}")
    console.print(f"[bold]{service}[/]: revision {data['revision'] or '(none yet)'}")
    if data["active_deployment"]:
        console.print(_view(data["active_deployment"]))
    table = Table("deployment", "revision", "phase", "created")
    for d in data["deployments"]:
        table.add_row(
            d["id"],
            f"{d['from_revision'] or '-'} → {d['revision']}",
            d["phase"],
            _when(d["created_at"]),
        )
    console.print(table)


_DEPLOYMENT_ID = re.compile(r"^d-[0-9a-f]{12}$")


def _send(api: Api, target: str, command: str) -> str:
    """Give ``command`` to a deployment (by id) or to a service's active deployment; says
    which deployment got it."""
    if _DEPLOYMENT_ID.match(target):
        api.call("POST", f"/deployments/{target}/{command}")
        return target
    accepted = api.call("POST", f"/services/{target}/{command}")
    return f"{target} (deployment {accepted['deployment']})"


def _command(name: str, doc: str) -> click.Command:
    @click.command(name=name.replace("_", "-"), help=doc)
    @click.argument("target", metavar="DEPLOYMENT|SERVICE")
    @api_options
    def cmd(target: str, url: str, token: str | None) -> None:
        which = _send(Api(url, token), target, name)
        console.print(f"{name.replace('_', ' ')} requested for {which}")

    return cmd


@click.command()
@click.argument("target", metavar="DEPLOYMENT|SERVICE")
@click.option("--full", is_flag=True, help="Skip the remaining steps: all traffic to green now.")
@api_options
def promote(target: str, full: bool, url: str, token: str | None) -> None:
    """Go to the next step now (ends a pause or the termination wait). TARGET is a
    deployment id or a service (its active deployment)."""
    which = _send(Api(url, token), target, "promote_full" if full else "promote")
    console.print(f"{'full promotion' if full else 'promotion'} requested for {which}")


rollback = _command(
    "rollback",
    "Send all traffic back to blue in one call and stop green. TARGET is a deployment id "
    "or a service (its active deployment).",
)
stop = _command(
    "stop",
    "Stop the deployment: traffic back to blue, green stopped. TARGET is a deployment id or "
    "a service (its active deployment).",
)


@click.command()
@click.argument("deployment")
@api_options
def retry(deployment: str, url: str, token: str | None) -> None:
    """Deploy a failed, rolled-back or stopped deployment's revision again."""
    dep = Api(url, token).call("POST", f"/deployments/{deployment}/retry")
    console.print(f"deployment [bold]{dep['id']}[/] retries {dep['service']} {dep['revision']}")


@click.command()
@click.option("--subject", help="Only events about this deployment, alarm or flags/ENV.")
@click.option("--service", help="Only events about this service and its deployments.")
@click.option("--kind", help="Only events of this kind, or under a prefix (deployment.*).")
@click.option("--since", default=0, help="Only events after this id.")
@click.option("--limit", default=200, show_default=True, help="The newest this many.")
@api_options
def events(
    subject: str | None,
    service: str | None,
    kind: str | None,
    since: int,
    limit: int,
    url: str,
    token: str | None,
) -> None:
    """The append-only event log: who did what, when, and why."""
    table = Table("id", "time", "actor", "kind", "subject", "message")
    params = {"since": since, "limit": limit, "subject": subject, "service": service, "kind": kind}
    found = Api(url, token).call(
        "GET", "/events", params={k: v for k, v in params.items() if v is not None}
    )
    for e in found:
        table.add_row(
            str(e["id"]), _when(e["at"]), e["actor"], e["kind"], e["subject"], e["message"]
        )
    console.print(table)


@click.command()
@click.argument("service")
@click.option("--revision", "-r", required=True)
@click.option("--replica", type=int, default=None)
@click.option("--tail", default=100, show_default=True)
@api_options
def logs(
    service: str, revision: str, replica: int | None, tail: int, url: str, token: str | None
) -> None:
    """The captured output of a revision's replicas."""
    params: dict[str, Any] = {"revision": revision, "tail": tail}
    if replica is not None:
        params["replica"] = replica
    click.echo(Api(url, token).call("GET", f"/services/{service}/logs", params=params)["logs"])


@click.group()
def deployments() -> None:
    """Inspect deployments."""


@deployments.command("get", epilog=WATCH_EXIT_HELP)
@click.argument("deployment")
@click.option("--watch", is_flag=True, help="Follow it live until it ends; the exit code says how.")
@api_options
def deployments_get(deployment: str, watch: bool, url: str, token: str | None) -> None:
    """A deployment's phase, traffic, replicas and latest events."""
    api = Api(url, token)
    if watch:
        _watch(api, deployment)
    else:
        console.print(_view(api.call("GET", f"/deployments/{deployment}")))


COMMANDS = [apply, deploy, status, promote, rollback, stop, retry, events, logs, deployments]
