"""``sluice webhooks add | list | rm | test | deliveries | enable | disable``."""

from __future__ import annotations

import os

import click
from rich.console import Console
from rich.table import Column, Table

from sluicegate.cli._api import Api, api_options
from sluicegate.cli._format import emit, json_option, when

console = Console()


@click.group()
def webhooks() -> None:
    """Send events (deployments, alarms...) to HTTP endpoints, signed with HMAC-SHA256.

    See docs/notifications.md for the payload, the headers and how to verify a signature.
    """


@webhooks.command("add")
@click.argument("endpoint", metavar="URL")
@click.option(
    "--events",
    "-e",
    "patterns",
    multiple=True,
    required=True,
    metavar="PATTERN",
    help="Event kinds to send, e.g. 'deployment.*', 'alarm.*', 'alarm.state' or '*' (repeatable);"
    " families: service, deployment, replica, alarm, flags, webhook. A pattern that matches"
    " no event kind is refused.",
)
@click.option(
    "--secret-env",
    metavar="VAR",
    help="Sign with the secret in environment variable VAR (at least 16 characters);"
    " by default a secret is generated and printed once.",
)
@click.option("--disabled", is_flag=True, help="Create it disabled (no deliveries yet).")
@api_options
def add(
    endpoint: str,
    patterns: tuple[str, ...],
    secret_env: str | None,
    disabled: bool,
    url: str,
    token: str | None,
) -> None:
    """Subscribe URL (http:// or https://) to the events matching --events."""
    body: dict[str, object] = {"url": endpoint, "events": list(patterns), "enabled": not disabled}
    if secret_env:
        secret = os.environ.get(secret_env)
        if not secret:
            raise click.BadParameter(
                f"environment variable {secret_env} is not set or empty", param_hint="--secret-env"
            )
        body["secret"] = secret
    hook = Api(url, token).call("POST", "/webhooks", body)
    console.print(
        f"webhook [bold]{hook['id']}[/] -> {hook['url']}"
        f" ({', '.join(hook['events'])}){'' if hook['enabled'] else ' disabled'}"
    )
    if not secret_env:
        console.print(
            f"signing secret (shown once, store it safely): {hook['secret']}", soft_wrap=True
        )


@webhooks.command("list")
@json_option
@api_options
def list_(as_json: bool, url: str, token: str | None) -> None:
    """Every webhook (secrets are never shown again)."""
    found = Api(url, token).call("GET", "/webhooks")
    if as_json:
        emit(found)
        return
    table = Table(Column("id", no_wrap=True), "url", "events", "enabled", "created")
    for h in found:
        table.add_row(
            h["id"],
            h["url"],
            ", ".join(h["events"]),
            "yes" if h["enabled"] else "no",
            when(h["created_at"]),
        )
    console.print(table)


@webhooks.command("rm")
@click.argument("webhook")
@api_options
def rm(webhook: str, url: str, token: str | None) -> None:
    """Delete a webhook and its delivery history."""
    Api(url, token).call("DELETE", f"/webhooks/{webhook}")
    console.print(f"webhook {webhook} deleted")


@webhooks.command("test")
@click.argument("webhook")
@api_options
def test(webhook: str, url: str, token: str | None) -> None:
    """Send a webhook.test event to this webhook only; `deliveries` shows the outcome."""
    out = Api(url, token).call("POST", f"/webhooks/{webhook}/test")
    console.print(f"test event {out['event_id']} queued for webhook {webhook}")


@webhooks.command("deliveries")
@click.argument("webhook")
@click.option(
    "--status",
    type=click.Choice(["pending", "delivered", "failed"]),
    help="Only deliveries in this state.",
)
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 1000))
@json_option
@api_options
def deliveries(
    webhook: str, status: str | None, limit: int, as_json: bool, url: str, token: str | None
) -> None:
    """A webhook's latest deliveries, newest first: status, attempts, the receiver's answer."""
    params: dict[str, object] = {"limit": limit}
    if status:
        params["status"] = status
    found = Api(url, token).call("GET", f"/webhooks/{webhook}/deliveries", params=params)
    if as_json:
        emit(found)
        return
    table = Table(
        "delivery",
        "event",
        Column("kind", no_wrap=True),
        Column("status", no_wrap=True),
        "attempts",
        "last answer",
        "next attempt",
        "delivered",
    )
    for d in found:
        answer = d["last_error"] or (str(d["last_status"]) if d["last_status"] else "-")
        table.add_row(
            str(d["id"]),
            str(d["event_id"]),
            d["kind"],
            d["status"],
            str(d["attempts"]),
            answer,
            when(d["next_attempt_at"]),
            when(d["delivered_at"]),
        )
    console.print(table)


def _toggle(enabled: bool) -> click.Command:
    verb = "enable" if enabled else "disable"

    @click.command(
        name=verb,
        help=f"{verb.capitalize()} a webhook"
        + ("." if enabled else " (no new deliveries; queued ones wait)."),
    )
    @click.argument("webhook")
    @api_options
    def cmd(webhook: str, url: str, token: str | None) -> None:
        Api(url, token).call("PATCH", f"/webhooks/{webhook}", {"enabled": enabled})
        console.print(f"webhook {webhook} {verb}d")

    return cmd


webhooks.add_command(_toggle(True))
webhooks.add_command(_toggle(False))

COMMANDS = [webhooks]
