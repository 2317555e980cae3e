"""``sluice server`` and ``sluice token``."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from sluicegate._logging import LogSettings


def _duration(
    low: tuple[float, str], high: tuple[float, str] | None = None
) -> Callable[[click.Context, click.Parameter, str], float]:
    """An option callback: a duration (``90s``, ``3h``) in seconds, at least ``low`` and at
    most ``high`` (each with how it is written in the message)."""

    def convert(ctx: click.Context, param: click.Parameter, value: str) -> float:
        from sluicegate.spec import parse_duration

        try:
            seconds = parse_duration(value)
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from exc
        if high is None and seconds < low[0]:
            raise click.BadParameter(f"at least {low[1]}")
        if high is not None and not low[0] <= seconds <= high[0]:
            raise click.BadParameter(f"from {low[1]} to {high[1]}")
        return seconds

    return convert


def _token_from_env(ctx: click.Context, param: click.Parameter, var: str | None) -> str | None:
    """``--prometheus-token-env VAR`` -> the token in VAR (never on the command line)."""
    if var is None:
        return None
    token = os.environ.get(var)
    if not token:
        raise click.BadParameter(f"environment variable {var} is not set or empty")
    return token


def _http_url(ctx: click.Context, param: click.Parameter, url: str | None) -> str | None:
    if url and not url.startswith(("http://", "https://")):
        raise click.BadParameter(f"{url!r} is not an http:// or https:// URL")
    return url


# Each option's parameter name is a ServerSettings field: the command passes them on as given.
@click.command()
@click.option("--port", default=7070, show_default=True, help="API port.")
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address the API listens on. Beyond loopback it needs --tls-cert/--tls-key (or"
    " --insecure-http).",
)
@click.option(
    "--tls-cert",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Serve the API over HTTPS with this PEM certificate chain (with --tls-key).",
)
@click.option(
    "--tls-key",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The private key (PEM, not encrypted) of --tls-cert.",
)
@click.option(
    "--tls-client-ca",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Mutual TLS: clients must present a certificate this CA (PEM) signed.",
)
@click.option(
    "--insecure-http",
    is_flag=True,
    help="Allow plain HTTP on a non-loopback --host (only behind a TLS-terminating proxy:"
    " tokens cross the network in clear otherwise).",
)
@click.option(
    "--state-dir",
    default=".sluicegate",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Where state, logs and secrets live.",
)
@click.option(
    "--database",
    default="",
    envvar="SLUICE_DATABASE_URL",
    help="sqlite path or postgresql://… URL (default: <state-dir>/sluicegate.db); or "
    "SLUICE_DATABASE_URL, which keeps a password off the command line.",
)
@click.option(
    "--admin-token-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="On first start, write the admin token to this file (0600) instead of printing it "
    "(unattended set-ups).",
)
@click.option("--insecure", is_flag=True, help="Serve the API without tokens (development only).")
@click.option(
    "--no-default-guards",
    "default_guards",
    flag_value=False,
    default=True,
    help="Do not judge green against blue automatically (for benchmarks that compare "
    "other detection strategies).",
)
@click.option(
    "--push-window",
    default="3h",
    show_default=True,
    metavar="DURATION",
    callback=_duration((60, "1m")),
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
    callback=_http_url,
    help="Prometheus server that alarms with `source: prometheus` query, e.g. "
    "http://127.0.0.1:9090.",
)
@click.option(
    "--prometheus-token-env",
    "prometheus_token",
    metavar="VAR",
    default=None,
    callback=_token_from_env,
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
    "--allow-link-local-endpoints",
    is_flag=True,
    help="Let services' external endpoints be link-local addresses (169.254.0.0/16, "
    "fe80::/10) or cloud metadata names. Off: refused at apply.",
)
@click.option(
    "--container-host",
    metavar="URL",
    default=None,
    help="Engine API for services with compute.container and no hosts: "
    "unix:///run/podman/podman.sock or tcp://host:2375. Default: CONTAINER_HOST, "
    "DOCKER_HOST, else the local Podman or Docker socket.",
)
@click.option(
    "--header-timeout",
    default="10s",
    show_default=True,
    metavar="DURATION",
    callback=_duration((0.1, "100ms"), (300, "5m")),
    help="A client must send a request's head within this (slow clients are closed).",
)
@click.option(
    "--give-up-after",
    "failure_bound",
    default="60s",
    show_default=True,
    metavar="DURATION",
    callback=_duration((1, "1s"), (86400, "1d")),
    help="A deployment whose steps keep failing to apply (the router does not "
    "answer, a bug) for this long is given up: traffic back to blue, FAILED. "
    "Each failure is an event meanwhile.",
)
@click.pass_context
def server(ctx: click.Context, /, push_window: float, **options: Any) -> None:
    """Run the embedded server: API, controller, alarm loop, flag rollouts, webhooks, router
    process and local compute. Guarding alarms (a service spec's `alarms:` and Alertmanager
    alerts) roll deployments back; --no-default-guards disables only the built-in canary
    guard."""
    from sluicegate.server import ServerSettings, run_server

    log = ctx.find_object(LogSettings) or LogSettings()
    run_server(ServerSettings(push_window=int(push_window), log=log, **options))


COMMANDS = [server]
