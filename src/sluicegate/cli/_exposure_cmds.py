"""``sluice flags exposures``: how often agents evaluated each flag's variants."""

from __future__ import annotations

import time

import click
from rich.console import Console

from sluicegate.cli._api import Api, api_options
from sluicegate.cli._env_param import env_param
from sluicegate.cli._flag_views import exposure_table
from sluicegate.cli._format import emit, json_option

console = Console()


def since_epoch(value: str, now: float) -> int:
    """``--since``: a duration back from ``now`` (``90s``, ``1h``, ``7d``) as epoch seconds."""
    from sluicegate.spec import parse_duration

    try:
        back = parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--since") from exc
    return max(0, int(now - back))


@click.command()
@env_param
@click.option("--flag", "-f", "flag", default=None, help="Only this flag.")
@click.option(
    "--since",
    default="1h",
    show_default=True,
    help="How far back: 15m, 1h, 7d (the server keeps 14 days, per minute).",
)
@json_option
@api_options
def exposures(
    env: str, flag: str | None, since: str, as_json: bool, url: str, token: str | None
) -> None:
    """Evaluations of ENV's flags per variant, as the agents reported them.

    Agents report their counts every --report-interval (10s by default), so the last
    seconds may not be in yet. Failed evaluations show as variant error:CODE, flags the
    app asked for that do not exist as flag (unknown).

    \b
    sluice flags exposures --env prod
    sluice flags exposures --env prod --flag new-checkout --since 15m
    """
    params: dict[str, str | int] = {"since": since_epoch(since, time.time())}
    if flag is not None:
        params["flag"] = flag
    data = Api(url, token).call("GET", f"/flags/{env}/exposures", params=params)
    if as_json:
        emit(data)
    else:
        console.print(exposure_table(data))
