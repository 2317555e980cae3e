"""Small formatting helpers shared by the CLI's commands: times, and ``--json`` output.

Every command that reads something takes ``--json`` (:func:`json_option`) and then prints
the API's answer exactly as the server gave it, through :func:`emit`: one JSON document,
or, for commands that follow a stream (``--follow``, ``--watch``), one JSON object per line.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import click

__all__ = ["emit", "json_option", "when"]

F = TypeVar("F", bound=Callable[..., Any])


def when(ts: float | None) -> str:
    """An epoch time as ``YYYY-MM-DD HH:MM:SS`` (UTC), ``-`` for none."""
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S")


def json_option(f: F) -> F:
    """``--json`` (parameter ``as_json``): print the server's answer as JSON, for scripts."""
    option = click.option(
        "--json",
        "as_json",
        is_flag=True,
        help="Print the server's answer as JSON, exactly as the API returns it (for scripts).",
    )
    return option(f)


def emit(data: Any, *, line: bool = False) -> None:
    """Print ``data`` as JSON on stdout, unchanged: indented as one document, or with
    ``line`` compact on one line (one object per line when following), flushed at once so a
    reader of a pipe sees each object as it comes. Non-ASCII text is escaped (``\u2192``),
    so the output is valid whatever the terminal's encoding."""
    if line:
        click.echo(json.dumps(data, separators=(",", ":")))
    else:
        click.echo(json.dumps(data, indent=2))
    sys.stdout.flush()
