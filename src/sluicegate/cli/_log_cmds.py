"""``sluice logs SERVICE -r REV [--follow]``: what a revision's replicas wrote."""

from __future__ import annotations

import time
from typing import Any

import click

from sluicegate.cli._api import Api, api_options
from sluicegate.cli._format import emit, json_option

__all__ = ["COMMANDS", "POLL_SECONDS"]

#: How often ``--follow`` asks for new lines when it has read everything.
POLL_SECONDS = 1.0
_FOLLOW_LIMIT = 1000  # lines per replica and request while following

LOGS_EPILOG = """\b
Examples:
  sluice logs shop -r v2                      # the last 100 lines of each replica
  sluice logs shop -r v2 --replica 0 --tail 20
  sluice logs shop -r v2 --follow             # then every new line, until Ctrl-C
  sluice logs shop -r v2 -f --json | jq -r '.replicas[].lines[]'
"""


def _print_lines(answer: dict[str, Any], prefix: bool) -> None:
    for r in answer["replicas"]:
        if r["skipped"]:
            click.echo(
                f"sluice: replica {r['replica']}: {r['skipped']} bytes of output were rotated "
                "away before they could be read",
                err=True,
            )
        for line in r["lines"]:
            click.echo(f"[{r['replica']}] {line}" if prefix else line)


@click.command(epilog=LOGS_EPILOG)
@click.argument("service")
@click.option("--revision", "-r", required=True, help="The revision whose output to show.")
@click.option("--replica", type=click.IntRange(0), default=None, help="Only this replica.")
@click.option(
    "--tail",
    default=100,
    show_default=True,
    type=click.IntRange(1, 10000),
    help="The last this many lines of each replica.",
)
@click.option(
    "--follow",
    "-f",
    is_flag=True,
    help="Then print new lines as the replicas write them, until Ctrl-C. Each line is "
    "printed once, also when the log is rotated meanwhile; lines of several replicas are "
    "prefixed [N].",
)
@json_option
@api_options
def logs(
    service: str,
    revision: str,
    replica: int | None,
    tail: int,
    follow: bool,
    as_json: bool,
    url: str,
    token: str | None,
) -> None:
    """The captured output (stdout and stderr) of a revision's replicas, with a line from
    Sluicegate for each start, exit and restart.

    With --json: the API's answer (its `replicas` hold each replica's lines); with --follow
    --json, one such answer per line whenever new lines came.
    """
    api = Api(url, token)
    params: dict[str, Any] = {"revision": revision, "tail": tail}
    if replica is not None:
        params["replica"] = replica
    answer = api.call("GET", f"/services/{service}/logs", params=params)
    if not follow:
        if as_json:
            emit(answer)
        else:
            click.echo(answer["logs"])
        return
    if not answer["replicas"]:
        raise click.ClickException(f"nothing to follow: {answer['logs']}")
    prefix = replica is None
    while True:
        if as_json:
            emit(answer, line=True)
        else:
            _print_lines(answer, prefix)
        answer = _next(api, service, params, answer["cursor"])


def _next(api: Api, service: str, params: dict[str, Any], cursor: str) -> dict[str, Any]:
    """The next answer with new lines (or lost bytes) after ``cursor``, polling until one
    comes."""
    while True:
        asked = {**params, "after": cursor, "limit": _FOLLOW_LIMIT}
        answer: dict[str, Any] = api.call("GET", f"/services/{service}/logs", params=asked)
        if any(r["lines"] or r["skipped"] for r in answer["replicas"]):
            return answer
        cursor = answer["cursor"]
        if not any(r["more"] for r in answer["replicas"]):
            time.sleep(POLL_SECONDS)


COMMANDS = [logs]
