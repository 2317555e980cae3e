"""``sluice server`` and ``sluice token``."""

from __future__ import annotations

import os
from pathlib import Path

import click

from sluicegate.cli._api import Api, api_options


@click.command()
@click.option("--port", default=7070, show_default=True, help="API port.")
@click.option(
    "--state-dir",
    default=".sluicegate",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Where state, logs and secrets live.",
)
@click.option(
    "--database",
    default=None,
    help="sqlite path or postgresql://… URL (default: <state-dir>/sluicegate.db).",
)
@click.option("--insecure", is_flag=True, help="Serve the API without tokens (development only).")
@click.option(
    "--no-default-guards",
    is_flag=True,
    help="Do not judge green against blue automatically (for benchmarks that compare "
    "other detection strategies).",
)
@click.option(
    "--push-window",
    default="3h",
    show_default=True,
    help="How long pushed metrics are kept in memory (e.g. 30m, 3h).",
)
@click.option(
    "--push-max-series",
    default=1000,
    show_default=True,
    type=click.IntRange(1, 1_000_000),
    help="At most this many pushed series (name + dimensions); more are refused.",
)
@click.option(
    "--prometheus-url",
    metavar="URL",
    default=None,
    help="Prometheus server that alarms with `source: prometheus` query, e.g. "
    "http://127.0.0.1:9090.",
)
@click.option(
    "--prometheus-token-env",
    metavar="VAR",
    default=None,
    help="Send the bearer token in environment variable VAR to Prometheus (for one "
    "behind an authenticating proxy).",
)
@click.option(
    "--webhook-timeout",
    default=10.0,
    show_default=True,
    type=click.FloatRange(0.1, 300),
    help="Seconds a webhook receiver has to answer before the attempt counts as failed.",
)
@click.option(
    "--webhook-attempts",
    default=12,
    show_default=True,
    type=click.IntRange(1, 100),
    help="Attempts per webhook delivery (backoff 1 s, 2 s, 4 s ... up to 5 min) "
    "before it is given up with a webhook.failed event.",
)
@click.option(
    "--router-flags-env",
    metavar="ENV",
    default="prod",
    show_default=True,
    help="Flag environment whose current version the router's flag rules evaluate; "
    'pushed at start and on every change ("" to push none).',
)
@click.option(
    "--allow-private-webhooks",
    is_flag=True,
    help="Let webhooks reach loopback, private and link-local addresses (this host, the "
    "private network, cloud metadata). Off: such targets are refused.",
)
@click.option(
    "--give-up-after",
    default="60s",
    show_default=True,
    metavar="DURATION",
    help="A deployment whose steps keep failing to apply (the router does not "
    "answer, a bug) for this long is given up: traffic back to blue, FAILED. "
    "Each failure is an event meanwhile.",
)
def server(
    port: int,
    state_dir: str,
    database: str | None,
    insecure: bool,
    no_default_guards: bool,
    push_window: str,
    push_max_series: int,
    prometheus_url: str | None,
    prometheus_token_env: str | None,
    webhook_timeout: float,
    webhook_attempts: int,
    router_flags_env: str,
    give_up_after: str,
    allow_private_webhooks: bool,
) -> None:
    """Run the embedded server: API, controller, alarm loop, flag rollouts, webhooks, router
    process and local compute. Guarding alarms (a service spec's `alarms:` and Alertmanager
    alerts) roll deployments back; --no-default-guards disables only the built-in canary
    guard."""
    from sluicegate.server import ServerSettings, run_server
    from sluicegate.spec import parse_duration

    try:
        window = int(parse_duration(push_window))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--push-window") from exc
    if window < 60:
        raise click.BadParameter("at least 1m", param_hint="--push-window")
    try:
        failure_bound = parse_duration(give_up_after)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--give-up-after") from exc
    if not 1 <= failure_bound <= 86400:
        raise click.BadParameter("from 1s to 1d", param_hint="--give-up-after")
    prometheus_token = None
    if prometheus_token_env:
        prometheus_token = os.environ.get(prometheus_token_env)
        if not prometheus_token:
            raise click.BadParameter(
                f"environment variable {prometheus_token_env} is not set or empty",
                param_hint="--prometheus-token-env",
            )
    if prometheus_url and not prometheus_url.startswith(("http://", "https://")):
        raise click.BadParameter(
            f"{prometheus_url!r} is not an http:// or https:// URL", param_hint="--prometheus-url"
        )
    run_server(
        ServerSettings(
            Path(state_dir),
            port=port,
            database=database,
            insecure=insecure,
            default_guards=not no_default_guards,
            push_window=window,
            push_max_series=push_max_series,
            prometheus_url=prometheus_url,
            prometheus_token=prometheus_token,
            webhook_timeout=webhook_timeout,
            webhook_attempts=webhook_attempts,
            router_flags_env=router_flags_env,
            failure_bound=failure_bound,
            allow_private_webhooks=allow_private_webhooks,
        )
    )


@click.group()
def token() -> None:
    """API tokens."""


@token.command("create")
@click.option("--role", required=True, type=click.Choice(["admin", "deployer", "reader", "agent"]))
@click.option("--name", default="", help="What the token is for.")
@click.option(
    "--env", default=None, help="For --role agent: the one environment whose flags the token reads."
)
@api_options
def token_create(role: str, name: str, env: str | None, url: str, token: str | None) -> None:
    """Create a token and print it (only its hash is stored)."""
    body: dict[str, str] = {"role": role, "name": name}
    if env is not None:
        body["env"] = env
    click.echo(Api(url, token).call("POST", "/tokens", body)["token"])


@click.group()
def keys() -> None:
    """Agent keys: read-only tokens for `sluice agent`, scoped to one environment."""


@keys.command("create")
@click.option("--env", required=True, help="The environment whose flags the key reads.")
@click.option("--name", default="", help="What the key is for (default agent-<env>).")
@api_options
def keys_create(env: str, name: str, url: str, token: str | None) -> None:
    """Create an agent key and print it: pass it to `sluice agent --key`."""
    body = {"role": "agent", "name": name, "env": env}
    click.echo(Api(url, token).call("POST", "/tokens", body)["token"])


COMMANDS = [server, token, keys]
