"""``sluice flags``: environments, versioned flag sets, diffs, evaluation, rollouts."""

from __future__ import annotations

import json
from typing import Any

import click
import yaml
from rich.console import Console

from sluicegate.cli._api import Api, api_options
from sluicegate.cli._exposure_cmds import exposures
from sluicegate.cli._flag_env_cmds import envs
from sluicegate.cli._flag_rollout_cmds import rollout, watch_rollout
from sluicegate.cli._flag_views import (
    compact,
    diff_lines,
    evaluation,
    history_table,
    when,
)
from sluicegate.cli._format import emit, json_option

console = Console()

STRATEGIES = (
    "AllAtOnce",
    "Linear50PercentEvery30Seconds",
    "Linear20PercentEvery6Minutes",
    "Canary10Percent20Minutes",
)

_ENV_HELP = "The flag environment (prod, staging, …)."


@click.group()
def flags() -> None:
    """Feature flags: environments, versioned flag sets, evaluation, gradual rollouts.

    \b
    sluice flags envs create prod
    sluice flags apply -f flags.yaml --env prod -m "beta for EU"
    sluice flags apply -f flags.yaml --env prod --strategy Canary10Percent20Minutes \\
        --alarm shop/high-5xx
    sluice flags eval new-checkout --env prod --ctx userId=u123 --explain
    sluice flags history --env prod;  sluice flags diff --env prod
    sluice flags revert --env prod --to 7
    sluice flags rollout status prod
    sluice flags exposures prod --since 15m
    """


# -- changes ---------------------------------------------------------------------------------


def _steps(values: tuple[str, ...]) -> list[dict[str, Any]]:
    steps = []
    for item in ",".join(values).split(","):
        weight, _, pause = item.strip().partition(":")
        try:
            step: dict[str, Any] = {"weight": int(weight)}
        except ValueError:
            raise click.BadParameter(
                f"{item!r} is not PERCENT or PERCENT:PAUSE, like 10:30s", param_hint="--steps"
            ) from None
        if pause:
            step["pause"] = pause
        steps.append(step)
    return steps


def _rollout(
    strategy: str | None, steps: tuple[str, ...], bake_time: str | None, alarms: tuple[str, ...]
) -> dict[str, Any] | None:
    if strategy and steps:
        raise click.UsageError("give --strategy or --steps, not both")
    if not (strategy or steps or bake_time or alarms):
        return None
    out: dict[str, Any] = {"alarms": list(alarms)}
    if steps:
        out["strategy"] = {"steps": _steps(steps)}
    elif strategy:
        out["strategy"] = strategy
    if bake_time is not None:
        out["bake_time"] = bake_time
    return out


def rollout_options(f: Any) -> Any:
    f = click.option(
        "--alarm",
        "alarms",
        multiple=True,
        metavar="NAME",
        help="A guarding alarm (repeatable): if it fires during the rollout or "
        "its bake time, everyone goes back to the current version.",
    )(f)
    f = click.option(
        "--bake-time",
        metavar="DURATION",
        help="How long everyone is on the new version, watched by the alarms, "
        "before the rollout completes (e.g. 5m; 0 for none). Default: the "
        "strategy's.",
    )(f)
    f = click.option(
        "--steps",
        multiple=True,
        metavar="PERCENT[:PAUSE],...",
        help="Custom steps: the share of users, then a wait, e.g. "
        "10:30s,50:2m (a last step to 100 % is added).",
    )(f)
    f = click.option(
        "--strategy",
        type=click.Choice(STRATEGIES),
        help="Publish gradually with one of AppConfig's predefined strategies. "
        "Without --strategy/--steps/--bake-time/--alarm the version is "
        "published to everyone at once; with only --bake-time or --alarm, "
        "AllAtOnce.",
    )(f)
    return f


def _print_applied(data: dict[str, Any], verb: str) -> None:
    env = data["env"]
    if not data["changed"]:
        console.print(f"{env}: {data['note']}")
        return
    frm = f" (from v{data['previous_version']})" if data["previous_version"] else ""
    console.print(f"[bold]{env}[/]: version {data['version']} {verb}{frm}")
    for line in diff_lines(data["diff"]):
        console.print(line)
    if data.get("note"):
        console.print(data["note"])
    r = data.get("rollout")
    if r:
        console.print(
            f"rollout [bold]{r['id']}[/]: v{r['from_version']} → v{r['to_version']}"
            f"{'; guarded by ' + ', '.join(r['alarms']) if r['alarms'] else ''}"
        )
        for line in r["plan_text"]:
            console.print(f"  {line}")
        console.print("  (the wait at 100 % is the bake time: alarms still revert during it)")
        console.print(f"follow it: sluice flags rollout status {env} --watch")
    elif data["previous_version"] is not None or data.get("note") is None:
        console.print(f"published: everyone gets version {data['version']} now")


def _if_match(expected: int | None) -> dict[str, str] | None:
    return None if expected is None else {"If-Match": f'"{expected}"'}


@flags.command()
@click.option(
    "-f",
    "--file",
    "path",
    required=True,
    type=click.Path(dir_okay=False),
    help="The flag set (YAML or JSON).",
)
@click.option("--env", "-e", required=True, help=_ENV_HELP)
@click.option(
    "--expected-version",
    type=int,
    metavar="N",
    help="Refuse (409) unless the current version is still N: two editors never "
    "overwrite each other. 0 means the environment has no version yet.",
)
@click.option("-m", "--message", default="", help="Why: kept in the history and audit log.")
@rollout_options
@click.option("--watch", is_flag=True, help="Follow the rollout live until it ends.")
@api_options
def apply(
    path: str,
    env: str,
    expected_version: int | None,
    message: str,
    strategy: str | None,
    steps: tuple[str, ...],
    bake_time: str | None,
    alarms: tuple[str, ...],
    watch: bool,
    url: str,
    token: str | None,
) -> None:
    """Validate a flag-set file and save it as ENV's next version.

    Validation is local first (every problem, by path), then on the server. An invalid set
    changes nothing; an unchanged one saves no version.
    """
    from sluicegate.flags import load_flag_set

    document = load_flag_set(path).document()
    api = Api(url, token)
    data = api.call(
        "PUT",
        f"/flags/{env}",
        {
            "document": document,
            "message": message,
            "rollout": _rollout(strategy, steps, bake_time, alarms),
        },
        headers=_if_match(expected_version),
    )
    _print_applied(data, "saved")
    if watch and data.get("rollout"):
        watch_rollout(api, env)


@flags.command()
@click.option("--env", "-e", required=True, help=_ENV_HELP)
@click.option(
    "--to",
    "to",
    required=True,
    type=click.IntRange(1),
    metavar="N",
    help="The version whose flag set to bring back.",
)
@click.option(
    "--expected-version",
    type=int,
    metavar="N",
    help="Refuse (409) unless the current version is still N.",
)
@click.option("-m", "--message", default="", help="Why (default: revert to version N).")
@rollout_options
@api_options
def revert(
    env: str,
    to: int,
    expected_version: int | None,
    message: str,
    strategy: str | None,
    steps: tuple[str, ...],
    bake_time: str | None,
    alarms: tuple[str, ...],
    url: str,
    token: str | None,
) -> None:
    """Save version N's flag set again as ENV's next version (history is never rewritten)."""
    data = Api(url, token).call(
        "POST",
        f"/flags/{env}/revert",
        {"to": to, "message": message, "rollout": _rollout(strategy, steps, bake_time, alarms)},
        headers=_if_match(expected_version),
    )
    _print_applied(data, f"saved with the flag set of version {to}")


# -- reading ---------------------------------------------------------------------------------


@flags.command()
@click.option("--env", "-e", required=True, help=_ENV_HELP)
@click.option(
    "--version",
    "number",
    type=click.IntRange(1),
    metavar="N",
    help="A saved version (default: the current one).",
)
@click.option(
    "--format", "fmt", type=click.Choice(["yaml", "json"]), default="yaml", show_default=True
)
@click.option(
    "--full", is_flag=True, help="Print the stored normal form, every default written out."
)
@api_options
def get(env: str, number: int | None, fmt: str, full: bool, url: str, token: str | None) -> None:
    """Print ENV's flag set, ready to edit and apply (defaults left out unless --full)."""
    api = Api(url, token)
    data = api.call("GET", f"/flags/{env}/versions/{number}" if number else f"/flags/{env}")
    if data["document"] is None:
        raise click.ClickException(
            f"{env} has no flag set yet (sluice flags apply -f FILE --env {env})"
        )
    document = data["document"] if full else compact(data["document"])
    if fmt == "json":
        click.echo(json.dumps(document, indent=2))
        return
    click.echo(
        f"# {env} version {data['version']}, saved {when(data['created_at'])} UTC by "
        f"{data['actor']}"
    )
    click.echo(yaml.safe_dump(document, sort_keys=False, allow_unicode=True), nl=False)


@flags.command()
@click.option("--env", "-e", required=True, help=_ENV_HELP)
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 1000))
@json_option
@api_options
def history(env: str, limit: int, as_json: bool, url: str, token: str | None) -> None:
    """ENV's versions, newest first: who saved each, why, and what became of it."""
    rows = Api(url, token).call("GET", f"/flags/{env}/versions", params={"limit": limit})
    if as_json:
        emit(rows)
        return
    console.print(history_table(env, rows))


@flags.command()
@click.option("--env", "-e", required=True, help=_ENV_HELP)
@click.option(
    "--from",
    "frm",
    type=click.IntRange(0),
    metavar="N",
    help="Older version (default: the one live before --to; versions rolled back, stopped or"
    " still rolling out were never live and are skipped).",
)
@click.option(
    "--to",
    "to",
    type=click.IntRange(1),
    metavar="M",
    help="Newer version (default: the one being rolled out, else the current one).",
)
@json_option
@api_options
def diff(
    env: str, frm: int | None, to: int | None, as_json: bool, url: str, token: str | None
) -> None:
    """What changed between two versions, flag by flag and segment by segment.

    Without --from/--to: what users get now (or what a rollout in progress brings them)
    against what they got before it.
    """
    params = {k: v for k, v in {"from": frm, "to": to}.items() if v is not None}
    data = Api(url, token).call("GET", f"/flags/{env}/diff", params=params)
    if as_json:
        emit(data)
        return
    console.print(f"[bold]{env}[/]: version {data['from']} → {data['to']}")
    for line in diff_lines(data["changes"], data.get("description")):
        console.print(line)


def _context(items: tuple[str, ...]) -> dict[str, Any]:
    ctx: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key or key == ":":
            raise click.BadParameter(
                f"{item!r} is not KEY=VALUE (or KEY:=JSON)", param_hint="--ctx"
            )
        if key.endswith(":"):
            try:
                ctx[key[:-1]] = json.loads(value)
            except ValueError as exc:
                raise click.BadParameter(
                    f"{item!r}: not JSON ({exc})", param_hint="--ctx"
                ) from None
        else:
            ctx[key] = value
    return ctx


@flags.command(name="eval")
@click.argument("key")
@click.option("--env", "-e", required=True, help=_ENV_HELP)
@click.option(
    "--ctx",
    "ctx",
    multiple=True,
    metavar="KEY=VALUE",
    help="A context attribute (repeatable); a string, or typed with KEY:=JSON "
    "(age:=42, beta:=true, tags:='[\"a\"]'). userId or targetingKey is the "
    "user.",
)
@click.option(
    "--version",
    "number",
    type=click.IntRange(1),
    metavar="N",
    help="Evaluate in version N (default: the version this context gets now, "
    "following a rollout in progress).",
)
@click.option("--explain", is_flag=True, help="Say which rule matched and why.")
@json_option
@api_options
def eval_(
    key: str,
    env: str,
    ctx: tuple[str, ...],
    number: int | None,
    explain: bool,
    as_json: bool,
    url: str,
    token: str | None,
) -> None:
    """Evaluate flag KEY on the server for a context, as an agent would serve it."""
    body = {"key": key, "context": _context(ctx), "explain": explain, "version": number}
    result = Api(url, token).call("POST", f"/flags/{env}/evaluate", body)
    if as_json:
        emit(result)
        return
    for line in evaluation(result):
        click.echo(line)


@flags.command()
def schema() -> None:
    """Print the flag-set JSON Schema (draft 2020-12), for editors and CI."""
    from sluicegate.flags import flag_set_schema

    click.echo(json.dumps(flag_set_schema(), indent=2))


flags.add_command(envs)
flags.add_command(rollout)
flags.add_command(exposures)

COMMANDS = [flags]
