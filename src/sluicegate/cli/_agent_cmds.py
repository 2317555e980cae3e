"""``sluice agent``."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.option(
    "--server",
    "server_url",
    required=True,
    envvar="SLUICE_SERVER",
    help="The Sluicegate server's URL, e.g. https://sluice.example:7070.",
)
@click.option("--env", "env", required=True, help="The environment whose flags to serve.")
@click.option(
    "--ca-file",
    envvar="SLUICE_CA_FILE",
    default=None,
    metavar="PATH",
    help="Trust the server certificates this CA file (PEM) signed, for an https:// server"
    " with a private CA (or SLUICE_CA_FILE). The certificate is always verified.",
)
@click.option(
    "--client-cert",
    envvar="SLUICE_CLIENT_CERT",
    default=None,
    metavar="PATH",
    help="Present this client certificate (PEM) to a server that asks for one (mutual TLS).",
)
@click.option(
    "--client-key",
    envvar="SLUICE_CLIENT_KEY",
    default=None,
    metavar="PATH",
    help="The private key (PEM) of --client-cert.",
)
@click.option(
    "--key",
    envvar="SLUICE_AGENT_KEY",
    default=None,
    help="API token that may read the environment's flags (or SLUICE_AGENT_KEY).",
)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address of the local API. Keep it on loopback: it has no auth.",
)
@click.option(
    "--port",
    default=2772,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port of the local API (0 picks a free one and prints it).",
)
@click.option(
    "--cache-dir",
    default=".sluice-agent",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Where the last known good snapshot is kept (<env>.snapshot.json).",
)
@click.option(
    "--poll-interval",
    default="30s",
    show_default=True,
    help="How often to poll when the server offers no stream (e.g. 5s, 1m).",
)
@click.option(
    "--report-interval",
    default="10s",
    show_default=True,
    help="How often to report evaluation counts per flag and variant to the server"
    " (exposures; e.g. 10s, 1m; 0 = never). Unsent counts wait for the next"
    " report; a last one goes out on a clean shutdown.",
)
def agent(
    server_url: str,
    env: str,
    key: str | None,
    host: str,
    port: int,
    cache_dir: str,
    poll_interval: str,
    report_interval: str,
    ca_file: str | None,
    client_cert: str | None,
    client_key: str | None,
) -> None:
    """Serve an environment's flags on localhost, kept in sync with the server.

    Serves OFREP (POST /ofrep/v1/evaluate/flags/KEY), GET /v1/flags/KEY?userId=u1,
    the raw snapshot for in-process SDKs (GET /v1/snapshot, /v1/stream), /healthz and
    /metrics. Updates arrive over a server-sent-events stream; when the server is down the
    agent keeps serving the last known good flags, also across restarts (from --cache-dir).
    Evaluation counts per flag and variant go to the server every --report-interval
    (exposures: see `sluice flags exposures ENV`).
    """
    from sluicegate.agent import AgentSettings, run_agent
    from sluicegate.spec import parse_duration

    try:
        interval = parse_duration(poll_interval)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--poll-interval") from exc
    if interval < 1:
        raise click.BadParameter("at least 1s", param_hint="--poll-interval")
    try:
        report_every = parse_duration(report_interval)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--report-interval") from exc
    settings = AgentSettings(
        server=server_url,
        env=env,
        key=key,
        host=host,
        port=port,
        cache_dir=Path(cache_dir),
        poll_interval=interval,
        report_interval=report_every,
        ca_file=ca_file,
        client_cert=client_cert,
        client_key=client_key,
    )
    from sluicegate._trust import client_tls

    client_tls(ca_file, client_cert, client_key)  # bad files stop the agent now, not later
    run_agent(settings, announce=click.echo)


COMMANDS = [agent]
