"""``sluice flags rollout status | stop | rollback``: a flag-set version rolling out."""

from __future__ import annotations

import time

import click
from rich.console import Console
from rich.live import Live

from sluicegate.cli._api import Api, api_options
from sluicegate.cli._env_param import env_param
from sluicegate.cli._flag_views import rollout_view
from sluicegate.cli._format import emit, json_option

__all__ = ["rollout", "watch_rollout"]

console = Console()


@click.group()
def rollout() -> None:
    """Follow, stop or roll back ENV's rollout of a new flag-set version (--env ENV or ENV)."""


def watch_rollout(api: Api, env: str, *, as_json: bool = False) -> None:
    """Follow ENV's rollout until it ends (``as_json``: quietly, then print it as JSON)."""
    if as_json:
        while (r := api.call("GET", f"/flags/{env}/rollout"))["active"]:
            time.sleep(0.5)
        emit(r)
        return
    with Live(console=console, refresh_per_second=4) as live:
        while True:
            r = api.call("GET", f"/flags/{env}/rollout")
            live.update(rollout_view(r))
            if not r["active"]:
                return
            time.sleep(0.5)


@rollout.command("status")
@env_param
@click.option("--watch", is_flag=True, help="Follow it live until it ends.")
@json_option
@api_options
def rollout_status(env: str, watch: bool, as_json: bool, url: str, token: str | None) -> None:
    """ENV's rollout in progress (or the last one): share, step, alarms, events.

    With --watch --json: nothing until it ends, then the rollout as JSON.
    """
    api = Api(url, token)
    if watch:
        watch_rollout(api, env, as_json=as_json)
        return
    r = api.call("GET", f"/flags/{env}/rollout")
    if as_json:
        emit(r)
    else:
        console.print(rollout_view(r))


def _rollout_command(name: str, doc: str) -> click.Command:
    @rollout.command(name, help=doc)
    @env_param
    @api_options
    def cmd(env: str, url: str, token: str | None) -> None:
        r = Api(url, token).call("POST", f"/flags/{env}/rollout/{name}")
        console.print(
            f"rollout {r['id']} {r['phase'].replace('_', ' ')}: everyone is back on "
            f"version {r['from_version']}"
        )

    return cmd


_rollout_command("stop", "Call ENV's rollout off: everyone back on the current version now.")
_rollout_command(
    "rollback",
    "The new version is bad: everyone back on the current version now (recorded as rolled back).",
)
