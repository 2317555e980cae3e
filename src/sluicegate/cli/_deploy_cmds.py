"""``sluice apply | deploy | promote | rollback | stop | retry``: changing what runs."""

from __future__ import annotations

import re

import click
from rich.console import Console

from sluicegate.cli._api import Api, api_options
from sluicegate.cli._deploy_watch import WATCH_EXIT_HELP, watch
from sluicegate.cli._format import emit, json_option
from sluicegate.spec import load_file
from sluicegate.spec.service import ServiceSpec

console = Console()


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


DEPLOY_EPILOG = (
    "\b\nExamples:\n"
    "  sluice deploy shop -r v2 --watch          # follow it; the exit code says how it ended\n"
    "  sluice deploy shop -r v2 --set env.MODE=fast --config AllAtOnce\n"
    "  sluice deploy shop -r v2 --json | jq -r .id\n\n" + WATCH_EXIT_HELP
)


@click.command(epilog=DEPLOY_EPILOG)
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
    "follow",
    default=False,
    help="Follow the deployment live until it ends; the exit code says how.",
)
@json_option
@api_options
def deploy(
    service: str,
    revision: str,
    config: str | None,
    settings: tuple[str, ...],
    follow: bool,
    as_json: bool,
    url: str,
    token: str | None,
) -> None:
    """Start a blue/green deployment of REVISION; prints the plan first.

    With --json: the created deployment with its plan, as the API answers it (with
    --watch: only the final deployment, once it has ended).
    """
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
    if as_json and not follow:
        emit(dep)
        return
    if not as_json:
        console.print(
            f"deployment [bold]{dep['id']}[/]: {service} "
            f"{dep['from_revision'] or '(none)'} → {revision}"
        )
        for line in dep["plan"]:
            console.print(f"  {line}", markup=False, highlight=False)
    if follow:
        watch(api, dep["id"], as_json=as_json)


_DEPLOYMENT_ID = re.compile(r"^d-[0-9a-f]{12}$")


_REASON = click.option(
    "--reason", default="", help="Why: the event log records it with your token's name."
)


def _send(api: Api, target: str, command: str, reason: str = "") -> str:
    """Give ``command`` to a deployment (by id) or to a service's active deployment; says
    which deployment got it."""
    params = {"reason": reason} if reason else None
    if _DEPLOYMENT_ID.match(target):
        api.call("POST", f"/deployments/{target}/{command}", params=params)
        return target
    accepted = api.call("POST", f"/services/{target}/{command}", params=params)
    return f"{target} (deployment {accepted['deployment']})"


def _command(name: str, doc: str) -> click.Command:
    @click.command(name=name.replace("_", "-"), help=doc)
    @click.argument("target", metavar="DEPLOYMENT|SERVICE")
    @_REASON
    @api_options
    def cmd(target: str, reason: str, url: str, token: str | None) -> None:
        which = _send(Api(url, token), target, name, reason)
        console.print(f"{name.replace('_', ' ')} requested for {which}")

    return cmd


@click.command()
@click.argument("target", metavar="DEPLOYMENT|SERVICE")
@click.option("--full", is_flag=True, help="Skip the remaining steps: all traffic to green now.")
@_REASON
@api_options
def promote(target: str, full: bool, reason: str, url: str, token: str | None) -> None:
    """Go to the next step now (ends a pause or the termination wait). TARGET is a
    deployment id or a service (its active deployment)."""
    which = _send(Api(url, token), target, "promote_full" if full else "promote", reason)
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
@_REASON
@api_options
def retry(deployment: str, reason: str, url: str, token: str | None) -> None:
    """Deploy a failed, rolled-back or stopped deployment's revision again."""
    params = {"reason": reason} if reason else None
    dep = Api(url, token).call("POST", f"/deployments/{deployment}/retry", params=params)
    console.print(f"deployment [bold]{dep['id']}[/] retries {dep['service']} {dep['revision']}")


COMMANDS = [apply, deploy, promote, rollback, stop, retry]
