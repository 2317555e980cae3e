"""One spelling for a flag environment: ``--env ENV`` everywhere, the bare ``ENV`` kept as alias.

Most flag commands took ``--env prod`` while ``flags rollout …`` and ``flags exposures`` took a
positional ``prod``; scripts written against one form broke on the other. Both now accept both.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import click

__all__ = ["env_param"]

ENV_HELP = "Flag environment, e.g. prod (also accepted as the bare ENV argument)."


def resolve_env(positional: str | None, option: str | None) -> str:
    """The environment named by either spelling; both given must agree, one is needed."""
    if positional is not None and option is not None and positional != option:
        raise click.UsageError(
            f"two environments given: ENV {positional!r} and --env {option!r}; give one"
        )
    env = option if option is not None else positional
    if env is None:
        raise click.UsageError("which environment? give --env ENV (e.g. --env prod)")
    return env


def env_param(f: Callable[..., Any]) -> Callable[..., Any]:
    """Give the command an ``env`` keyword from ``--env/-e ENV`` or the optional bare ``ENV``."""

    @functools.wraps(f)
    def wrapper(*args: Any, env_arg: str | None, env_opt: str | None, **kwargs: Any) -> Any:
        return f(*args, env=resolve_env(env_arg, env_opt), **kwargs)

    wrapper = click.option("--env", "-e", "env_opt", default=None, help=ENV_HELP)(wrapper)
    return click.argument("env_arg", metavar="[ENV]", required=False)(wrapper)
