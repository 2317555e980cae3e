"""``sluice token create|list|revoke`` and ``sluice keys create``: credentials, each for one
job (see docs/security.md)."""

from __future__ import annotations

import json
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from sluicegate.cli._api import Api, api_options
from sluicegate.cli._format import when

__all__ = ["COMMANDS"]

console = Console()
ROLES = ["admin", "deployer", "reader", "agent", "metrics", "alertmanager"]


@click.group()
def token() -> None:
    """API tokens: admin ⊇ deployer ⊇ reader, and narrow ones (agent, metrics,
    alertmanager). Deployer and admin tokens can run commands on the server host."""


@token.command(
    "create",
    epilog="Examples:\n\n\b\n  sluice token create --role deployer --name ci-pipeline --ttl 90d"
    "\n  sluice token create --role metrics --name app-shop --service shop"
    "\n  sluice token create --role alertmanager --name am",
)
@click.option("--role", required=True, type=click.Choice(ROLES), help="What the token may do.")
@click.option("--name", default="", help="What it is for; unique; events name the caller by it.")
@click.option("--env", default=None, help="--role agent: the one environment it reads.")
@click.option("--service", default=None, help="--role metrics: push for this service only.")
@click.option("--ttl", default=None, metavar="DURATION", help="Expire after this (e.g. 90d).")
@api_options
def token_create(
    role: str,
    name: str,
    env: str | None,
    service: str | None,
    ttl: str | None,
    url: str,
    token: str | None,
) -> None:
    """Create a token and print it once (only its hash is stored)."""
    body: dict[str, Any] = {"role": role, "name": name}
    for key, value in (("env", env), ("service", service), ("ttl", ttl)):
        if value is not None:
            body[key] = value
    click.echo(Api(url, token).call("POST", "/tokens", body)["token"])


@token.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the API's answer as JSON.")
@api_options
def token_list(as_json: bool, url: str, token: str | None) -> None:
    """Every token's name, role, scope and validity (never the token itself)."""
    tokens = Api(url, token).call("GET", "/tokens")
    if as_json:
        click.echo(json.dumps(tokens, indent=2))
        return
    table = Table("name", "role", "scope", "created", "expires", "state")
    for t in tokens:
        scope = t["env"] or t["service"] or "-"
        state = "valid" if t["valid"] else ("revoked" if t["revoked_at"] else "expired")
        table.add_row(
            t["name"], t["role"], scope, when(t["created_at"]), when(t["expires_at"]), state
        )
    console.print(table)


@token.command("revoke")
@click.argument("name")
@api_options
def token_revoke(name: str, url: str, token: str | None) -> None:
    """Revoke the valid token called NAME: it fails at once, on every server."""
    revoked = Api(url, token).call("DELETE", f"/tokens/{name}")
    console.print(f"token [bold]{revoked['name']}[/] ({revoked['role']}) revoked")


@click.group()
def keys() -> None:
    """Agent keys: tokens for `sluice agent`, scoped to one environment: they read its flags
    and report its exposures, nothing else."""


@keys.command("create")
@click.option("--env", required=True, help="The environment whose flags the key reads.")
@click.option("--name", default="", help="What the key is for (default agent-<env>-…).")
@click.option("--ttl", default=None, metavar="DURATION", help="Expire after this (e.g. 90d).")
@api_options
def keys_create(env: str, name: str, ttl: str | None, url: str, token: str | None) -> None:
    """Create an agent key and print it: give it to `sluice agent` as SLUICE_AGENT_KEY."""
    body: dict[str, Any] = {"role": "agent", "name": name, "env": env}
    if ttl is not None:
        body["ttl"] = ttl
    click.echo(Api(url, token).call("POST", "/tokens", body)["token"])


COMMANDS = [token, keys]
