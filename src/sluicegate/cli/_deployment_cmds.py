"""``sluice status`` and ``sluice deployments list | get``: reading deployments."""

from __future__ import annotations

from typing import Any

import click
from rich.console import Console
from rich.table import Column, Table

from sluicegate.cli._api import Api, api_options
from sluicegate.cli._deploy_watch import WATCH_EXIT_HELP, deployment_view, watch
from sluicegate.cli._format import emit, json_option, when

__all__ = ["COMMANDS", "deployments_table"]

console = Console()


def deployments_table(found: list[dict[str, Any]], *, service: bool = True) -> Table:
    """Deployments (the API's ``Deployment``), one per row, as listed (newest first)."""
    columns: list[Column | str] = [Column("deployment", no_wrap=True)]
    if service:
        columns.append("service")
    table = Table(*columns, "revisions", "phase", "green", "created (UTC)", "by", "reason")
    for d in found:
        row = [d["id"]]
        if service:
            row.append(d["service"])
        row += [
            f"{d['from_revision'] or '-'} → {d['revision']}",
            d["phase"],
            f"{d['green_weight']}%",
            when(d["created_at"]),
            d.get("actor") or "-",
            d.get("reason") or "",
        ]
        table.add_row(*row)
    return table


def replica_lines(found: list[dict[str, Any]]) -> list[str]:
    """Per replica (the API's ``ReplicaStatus``), two lines: its state and health, then
    where it runs (a table would truncate container ids and engine URLs)."""
    lines = []
    for r in found:
        health = "healthy" if r["healthy"] else f"unhealthy ({r['detail']})"
        lines.append(f"replica {r['revision']}/{r['replica']} at {r['address']}: {r['state']}, "
                     f"{health}, {r['restarts']} restarts")  # fmt: skip
        if r["container"]:
            lines.append(f"  container {r['container'][:12]}, image {(r['image'] or '-')[:19]},"
                         f" host {r['host']}")  # fmt: skip
        elif r["pid"]:
            lines.append(f"  pid {r['pid']}, host {r['host']}")
    return lines


@click.command()
@click.argument("service")
@json_option
@api_options
def status(service: str, as_json: bool, url: str, token: str | None) -> None:
    """A service's current revision, its active deployment and the latest ones.

    With --json: the service as `GET /v1/services/SERVICE` answers it (as
    `sluice services get --json`).
    """
    data = Api(url, token).call("GET", f"/services/{service}")
    if as_json:
        emit(data)
        return
    console.print(f"[bold]{service}[/]: revision {data['revision'] or '(none yet)'}")
    if data["active_deployment"]:
        console.print(deployment_view(data["active_deployment"]))
    for line in replica_lines(data.get("replicas") or []):
        console.print(line, markup=False, highlight=False, soft_wrap=True)
    console.print(deployments_table(data["deployments"], service=False))


@click.group()
def deployments() -> None:
    """Inspect deployments.

    \b
    sluice deployments list --service shop --ended --limit 5
    sluice deployments get d-3f9c2a01b7e4 --watch
    """


@deployments.command("list")
@click.option("--service", "-s", default=None, help="Only this service's deployments.")
@click.option(
    "--active/--ended",
    "active",
    default=None,
    help="Only the active ones, or only those that ended (default: both).",
)
@click.option(
    "--limit",
    default=20,
    show_default=True,
    type=click.IntRange(1, 1000),
    help="The newest this many.",
)
@json_option
@api_options
def deployments_list(
    service: str | None,
    active: bool | None,
    limit: int,
    as_json: bool,
    url: str,
    token: str | None,
) -> None:
    """Deployments, newest first: revisions, phase, green's share, who started them."""
    params: dict[str, Any] = {"limit": limit}
    if service is not None:
        params["service"] = service
    if active is not None:
        params["active"] = "true" if active else "false"
    found = Api(url, token).call("GET", "/deployments", params=params)
    if as_json:
        emit(found)
        return
    console.print(deployments_table(found))


@deployments.command("get", epilog=WATCH_EXIT_HELP)
@click.argument("deployment")
@click.option(
    "--watch", "follow", is_flag=True, help="Follow it live until it ends; the exit code says how."
)
@json_option
@api_options
def deployments_get(
    deployment: str, follow: bool, as_json: bool, url: str, token: str | None
) -> None:
    """A deployment's phase, traffic, replicas and latest events."""
    api = Api(url, token)
    if follow:
        watch(api, deployment, as_json=as_json)
    data = api.call("GET", f"/deployments/{deployment}")
    if as_json:
        emit(data)
    else:
        console.print(deployment_view(data))


COMMANDS = [status, deployments]
