"""``sluice services list | get | delete``: the services the server knows."""

from __future__ import annotations

import json
from typing import Any

import click
import yaml
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from sluicegate.cli._api import Api, api_options
from sluicegate.cli._deployment_cmds import deployments_table
from sluicegate.cli._format import emit, json_option

__all__ = ["COMMANDS"]

console = Console()


@click.group()
def services() -> None:
    """The services declared with `sluice apply`: list, inspect, delete.

    \b
    sluice services list
    sluice services get shop --spec > shop.yaml    # the spec as applied, ready to edit
    sluice services delete shop --yes
    """


@services.command("list")
@json_option
@api_options
def services_list(as_json: bool, url: str, token: str | None) -> None:
    """Every service with the revision serving now and its active deployment, if any."""
    found = Api(url, token).call("GET", "/services")
    if as_json:
        emit(found)
        return
    table = Table("service", "revision", "active deployment")
    for s in found:
        table.add_row(s["service"], s["revision"] or "(none yet)", s["active_deployment"] or "-")
    console.print(table)


def _where(spec: dict[str, Any]) -> str:
    listener = spec.get("listener") or {}
    ports = f"port {listener.get('port')}"
    if listener.get("test_port"):
        ports += f", test port {listener['test_port']}"
    return ports


def _compute(spec: dict[str, Any]) -> str:
    compute = spec.get("compute") or {}
    if compute.get("local"):
        return f"local, {compute['local'].get('replicas', 1)} replica(s)"
    if compute.get("container"):
        container = compute["container"]
        return f"container {container.get('image')}, {container.get('replicas', 1)} replica(s)"
    if compute.get("external"):
        return f"external ({len(compute['external'].get('revisions', {}))} revision(s) listed)"
    return ", ".join(compute) or "-"


@services.command("get")
@click.argument("name")
@click.option(
    "--spec", "spec_only", is_flag=True, help="Print only the spec as applied (YAML), to edit."
)
@json_option
@api_options
def services_get(name: str, spec_only: bool, as_json: bool, url: str, token: str | None) -> None:
    """One service: the revision serving now, where it listens and runs, its deployments."""
    data = Api(url, token).call("GET", f"/services/{name}")
    if as_json:
        emit(data)
        return
    spec = data["spec"]
    if spec_only:
        click.echo(yaml.safe_dump(spec, sort_keys=False, allow_unicode=True), nl=False)
        return
    head = Table(show_header=False, box=None)
    head.add_row("service", f"[bold]{name}[/]")
    head.add_row("revision", data["revision"] or "(none yet)")
    active = data["active_deployment"]
    head.add_row("active", f"{active['id']} ({active['phase']})" if active else "-")
    head.add_row("listener", _where(spec))
    head.add_row("compute", _compute(spec))
    config = (spec.get("deployment") or {}).get("config")
    head.add_row("config", escape(config if isinstance(config, str) else json.dumps(config)))
    head.add_row("alarms", ", ".join(a["name"] for a in spec.get("alarms") or []) or "-")
    console.print(head)
    if data["deployments"]:
        console.print(deployments_table(data["deployments"], service=False))


@services.command("delete")
@click.argument("name")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@api_options
def services_delete(name: str, yes: bool, url: str, token: str | None) -> None:
    """Stop NAME's revisions and forget it: its history, its alarms, its listeners.

    Refused while a deployment of it is active (stop it or let it finish first). Asks
    before deleting unless --yes.
    """
    api = Api(url, token)
    if not yes:
        data = api.call("GET", f"/services/{name}")  # 404 for an unknown one, before asking
        serving = f" (serving {data['revision']})" if data["revision"] else ""
        click.confirm(
            f"Delete service {name}{serving}: stop its revisions and forget its history and "
            "alarms?",
            abort=True,
            err=True,
        )
    out = api.call("DELETE", f"/services/{name}")
    stopped = ", ".join(out["stopped"])
    console.print(
        f"service {name} deleted"
        + (f"; stopped {stopped}" if stopped else "; nothing was running"),
        markup=False,
        highlight=False,
    )


@click.command()
@click.argument("service")
@click.option("--replicas", "-n", required=True, type=click.IntRange(1, 64),
              help="How many replicas the serving revision runs.")  # fmt: skip
@api_options
def scale(service: str, replicas: int, url: str, token: str | None) -> None:
    """Run N replicas of SERVICE's serving revision (and of its next deployments).

    Scaling in takes replicas out of the router before it stops them; scaling out adds
    the new ones to the router once they are healthy. Refused during a deployment.
    """
    out = Api(url, token).call("POST", f"/services/{service}/scale", {"replicas": replicas})
    console.print(f"{service} {out['revision']}: {out['was']} → {out['replicas']} replicas",
                  markup=False, highlight=False)  # fmt: skip


COMMANDS = [services, scale]
