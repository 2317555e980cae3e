"""``sluice flags envs [list] | create | delete``: the flag environments."""

from __future__ import annotations

from typing import Any

import click
from rich.console import Console
from rich.table import Table

from sluicegate.cli._api import Api, api_options
from sluicegate.cli._env_param import env_param
from sluicegate.cli._format import emit, json_option

__all__ = ["envs"]

console = Console()


def _list(url: str, token: str | None, as_json: bool) -> None:
    rows = Api(url, token).call("GET", "/flags/envs")
    if as_json:
        emit(rows)
        return
    table = Table("environment", "version", "newest", "rollout", "description")
    for e in rows:
        r = e["rollout"]
        rollout = f"{r['percent']}% of v{r['to_version']} ({r['phase']})" if r else "-"
        table.add_row(
            e["name"],
            str(e["current_version"] or "-"),
            str(e["latest_version"] or "-"),
            rollout,
            e["description"],
        )
    console.print(table)


@click.group(invoke_without_command=True)
@json_option
@api_options
@click.pass_context
def envs(ctx: click.Context, as_json: bool, url: str, token: str | None) -> None:
    """List the flag environments (same as `envs list`), or create or delete one.

    \b
    sluice flags envs --json
    sluice flags envs create staging -d "pre-production"
    sluice flags envs delete staging --yes
    """
    if ctx.invoked_subcommand is None:
        _list(url, token, as_json)


@envs.command("list")
@json_option
@api_options
def envs_list(as_json: bool, url: str, token: str | None) -> None:
    """Every flag environment: its current and newest version, a rollout in progress."""
    _list(url, token, as_json)


@envs.command("create")
@click.argument("name")
@click.option("--description", "-d", default="", help="What the environment is for.")
@api_options
def envs_create(name: str, description: str, url: str, token: str | None) -> None:
    """Create flag environment NAME (it has no flag set until the first apply)."""
    Api(url, token).call("POST", "/flags/envs", {"name": name, "description": description})
    console.print(f"flag environment [bold]{name}[/] created")


def _versions(env: dict[str, Any]) -> str:
    latest = env["latest_version"]
    if not latest:
        return "no flag set yet"
    return f"{latest} version{'s' if latest != 1 else ''}"


@envs.command("delete")
@env_param
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@api_options
def envs_delete(env: str, yes: bool, url: str, token: str | None) -> None:
    """Delete flag environment ENV with its versions and rollouts (admin).

    Refused while it is in use, and the error says by what: a rollout in progress, agent
    keys that read it (revoke them first), or the router's flag rules (`sluice server
    --router-flags-env`). Asks before deleting unless --yes.
    """
    api = Api(url, token)
    if not yes:
        found = {e["name"]: e for e in api.call("GET", "/flags/envs")}
        if env not in found:  # the same answer the delete would give, before asking
            api.call("GET", f"/flags/{env}")
        about = f" ({_versions(found[env])})" if env in found else ""
        click.confirm(
            f"Delete flag environment {env}{about} with its history and rollouts?",
            abort=True,
            err=True,
        )
    api.call("DELETE", f"/flags/envs/{env}")
    console.print(f"flag environment {env} deleted", markup=False, highlight=False)
