"""``sluice``: the command group and its subcommands."""

from __future__ import annotations

import logging
import sys

import click

from sluicegate import __version__
from sluicegate._logging import LogSettings, configure_logging
from sluicegate.cli import (
    _agent_cmds,
    _alarm_cmds,
    _certs_cmds,
    _deploy_cmds,
    _deployment_cmds,
    _event_cmds,
    _flag_cmds,
    _log_cmds,
    _server_cmds,
    _service_cmds,
    _token_cmds,
    _webhook_cmds,
)
from sluicegate.errors import SluicegateError

__all__ = ["main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="sluice")
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(["debug", "info", "warning", "error"]),
    help="How much the process logs to stderr.",
)
@click.option("--log-json", is_flag=True, help="Log one JSON object per line.")
@click.pass_context
def cli(ctx: click.Context, log_level: str, log_json: bool) -> None:
    """Sluicegate: release web services safely, on one machine or many."""
    configure_logging(log_level, json=log_json)
    # Commands that start other Sluicegate processes hand these on (ctx.find_object).
    ctx.obj = LogSettings(log_level, log_json)
    # The CLI's own HTTP calls are not news; their failures are reported as errors.
    logging.getLogger("httpx").setLevel(logging.WARNING)


@cli.command()
@click.option(
    "--config",
    "-c",
    "config_path",
    required=True,
    type=click.Path(dir_okay=False),
    help="Router config file (YAML or JSON).",
)
@click.option(
    "--workers",
    "-w",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Data-plane processes sharing the listener ports (SO_REUSEPORT).",
)
@click.option(
    "--insecure",
    is_flag=True,
    help="Serve the admin API without a token. For local development only.",
)
@click.option("--check", is_flag=True, help="Validate the config and exit.")
@click.pass_context
def router(ctx: click.Context, config_path: str, workers: int, insecure: bool, check: bool) -> None:
    """Run the router standalone: listeners, target groups, admin API.

    The admin token is read from the environment variable named by admin.token_env
    (default SLUICE_ADMIN_TOKEN); the key that signs sticky cookies from the one named by
    sticky_secret_env (default SLUICE_STICKY_SECRET).
    """
    from sluicegate.errors import SpecError
    from sluicegate.router import RouterSettings, check_listener_certificates, run_router
    from sluicegate.spec import RouterConfig, load_file

    config = load_file(RouterConfig, config_path)
    try:
        check_listener_certificates(config)  # the files, as the router will read them
    except SpecError as exc:
        raise SpecError(exc.problems, source=str(config_path)) from None
    if check:
        click.echo(
            f"{config_path}: valid ({len(config.listeners)} listener(s), "
            f"{len(config.target_groups)} target group(s))"
        )
        return
    log_settings = ctx.find_object(LogSettings) or LogSettings()
    settings = RouterSettings.from_env(config, workers, insecure, log_settings)
    run_router(config, settings)


for _command in (
    *_agent_cmds.COMMANDS,
    *_deploy_cmds.COMMANDS,
    *_deployment_cmds.COMMANDS,
    *_service_cmds.COMMANDS,
    *_event_cmds.COMMANDS,
    *_log_cmds.COMMANDS,
    *_flag_cmds.COMMANDS,
    *_server_cmds.COMMANDS,
    *_certs_cmds.COMMANDS,
    *_token_cmds.COMMANDS,
    *_alarm_cmds.COMMANDS,
    *_webhook_cmds.COMMANDS,
):
    cli.add_command(_command)


def main() -> None:
    try:
        cli(standalone_mode=False)
    except click.exceptions.Abort:
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except SluicegateError as exc:
        click.echo(f"sluice: error: {exc}", err=True)
        sys.exit(2)
