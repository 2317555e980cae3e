"""Lifecycle hooks, run for real: an HTTP check through the test listener, or a command.

A hook never raises for a failure of the thing it checks: it returns a ``HookResult`` saying
what happened, which the lifecycle turns into a rollback. Output is kept short (the tail) so
an event stays readable.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import ssl
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import httpx

from sluicegate._child_env import child_env

__all__ = ["HookResult", "run_command_hook", "run_http_hook"]

_OUTPUT_TAIL = 2000


@dataclass(frozen=True)
class HookResult:
    ok: bool
    detail: str
    seconds: float


async def run_http_hook(
    url: str, expect_status: int, timeout: float, verify: ssl.SSLContext | bool = True
) -> HookResult:
    """GET ``url``; ok when the status is ``expect_status``. ``verify``: how an https
    ``url``'s certificate is checked (see ``pinned_context`` for the service's own)."""
    started = time.monotonic()
    try:
        async with httpx.AsyncClient(timeout=timeout, verify=verify) as client:
            r = await client.get(url)
    except httpx.HTTPError as exc:
        return HookResult(False, f"GET {url} failed: {exc!r}", time.monotonic() - started)
    ok = r.status_code == expect_status
    detail = f"GET {url} answered {r.status_code}" + (
        "" if ok else f", expected {expect_status}: {r.text[:200]!r}"
    )
    return HookResult(ok, detail, time.monotonic() - started)


async def run_command_hook(
    argv: Sequence[str], env: Mapping[str, str], timeout: float, cwd: str | None = None
) -> HookResult:
    """Run ``argv``; ok on exit status 0. Killed (with its process group) after ``timeout``."""
    started = time.monotonic()
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            cwd=cwd,
            env=child_env(env),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
    except OSError as exc:
        return HookResult(
            False, f"cannot run {argv[0]!r}: {exc.strerror or exc}", time.monotonic() - started
        )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()
        return HookResult(
            False, f"{argv[0]} timed out after {timeout:g}s", time.monotonic() - started
        )
    text = out.decode("utf-8", "replace")[-_OUTPUT_TAIL:].strip()
    ok = proc.returncode == 0
    detail = f"{argv[0]} exited {proc.returncode}" + (f": {text}" if text else "")
    return HookResult(ok, detail, time.monotonic() - started)
