"""HTTP health probes shared by the backends; httpx errors become words, never exceptions."""

from __future__ import annotations

import os
import time

import httpx

__all__ = ["client", "probe"]


def client(timeout: float) -> httpx.AsyncClient:
    """A client for probes: no proxies from the environment, no keep-alive between probes."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout),
        trust_env=False,
        follow_redirects=False,
        limits=httpx.Limits(max_keepalive_connections=0),
    )


async def probe(http: httpx.AsyncClient, address: str, path: str) -> tuple[bool, int | None, str]:
    """GET ``http://address/path``: (healthy = 2xx, status code or None, detail)."""
    started = time.perf_counter()  # a duration for the detail text only, never a decision
    try:
        response = await http.get(f"http://{address}{path}")
    except httpx.TimeoutException:
        return False, None, f"no answer within {http.timeout.read}s"
    except httpx.ConnectError as exc:
        return False, None, _connect_reason(exc)
    except httpx.HTTPError as exc:
        return False, None, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    millis = (time.perf_counter() - started) * 1000
    code = response.status_code
    return 200 <= code < 300, code, f"{code} in {millis:.0f} ms"


def _connect_reason(exc: BaseException) -> str:
    """The OS's words for a failed connect ("connection refused"), from the cause chain."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno:
            return os.strerror(seen.errno).lower()
        seen = seen.__cause__ or seen.__context__
    return str(exc) or "connection failed"
