"""``sluice events [--follow]``: the append-only event log."""

from __future__ import annotations

import time
from typing import Any

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from sluicegate.cli._api import Api, api_options
from sluicegate.cli._deploy_watch import clock
from sluicegate.cli._format import emit, json_option

__all__ = ["COMMANDS", "POLL_SECONDS"]

console = Console()

#: How often ``--follow`` asks for new events when it has read everything.
POLL_SECONDS = 1.0

EVENTS_EPILOG = """\b
Examples:
  sluice events --service shop --kind 'deployment.*'
  sluice events --follow                         # Ctrl-C ends it
  sluice events --follow --json | jq -c 'select(.kind == "alarm.state")'
"""


def _line(e: dict[str, Any]) -> Text:
    """One event on one line, for ``--follow`` (a table cannot grow)."""
    return Text.assemble(
        (f"{e['id']:>6}  ", "dim"),
        f"{clock(e['at'])}  ",
        (f"{e['actor']:<10} ", "cyan"),
        (f"{e['kind']:<28} ", "bold"),
        f"{e['subject']}  ",
        e["message"],
    )


def _show(found: list[dict[str, Any]], *, as_json: bool, follow: bool) -> None:
    if as_json:
        if follow:
            for e in found:
                emit(e, line=True)
        else:
            emit(found)
    elif follow:
        for e in found:
            console.print(_line(e), soft_wrap=True)
    else:
        table = Table("id", "time", "actor", "kind", "subject", "message")
        for e in found:
            table.add_row(
                str(e["id"]), clock(e["at"]), e["actor"], e["kind"], e["subject"], e["message"]
            )
        console.print(table)


@click.command(epilog=EVENTS_EPILOG)
@click.option("--subject", help="Only events about this deployment, alarm or flags/ENV.")
@click.option("--service", help="Only events about this service and its deployments.")
@click.option("--kind", help="Only events of this kind, or under a prefix (deployment.*).")
@click.option("--since", default=0, type=click.IntRange(0), help="Only events after this id.")
@click.option(
    "--limit",
    default=200,
    show_default=True,
    type=click.IntRange(1, 10000),
    help="The newest this many (then, following, at most this many per request).",
)
@click.option(
    "--follow",
    "-f",
    is_flag=True,
    help="Keep printing new events as they are appended, until Ctrl-C.",
)
@json_option
@api_options
def events(
    subject: str | None,
    service: str | None,
    kind: str | None,
    since: int,
    limit: int,
    follow: bool,
    as_json: bool,
    url: str,
    token: str | None,
) -> None:
    """The append-only event log: who did what, when, and why.

    With --json: the list of events as the API answers it; with --follow --json, one
    event object per line.
    """
    api = Api(url, token)
    given = {"subject": subject, "service": service, "kind": kind}
    filters = {k: v for k, v in given.items() if v is not None}
    found = api.call("GET", "/events", params={"since": since, "limit": limit, **filters})
    _show(found, as_json=as_json, follow=follow)
    if not follow:
        return
    _follow(api, found[-1]["id"] if found else since, filters, limit, as_json=as_json)


def _follow(api: Api, since: int, filters: dict[str, str], page: int, *, as_json: bool) -> None:
    """Print every event after ``since`` that matches ``filters`` as it is appended, none
    skipped however many come at once (``/events/page`` is read forward until it has no
    more), until interrupted (Ctrl-C: exit 130)."""
    while True:
        got = api.call("GET", "/events/page", params={"since": since, "limit": page, **filters})
        _show(got["events"], as_json=as_json, follow=True)
        since = got["next"]
        if not got["more"]:
            time.sleep(POLL_SECONDS)


COMMANDS = [events]
