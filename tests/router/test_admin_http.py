"""The admin HTTP server itself: a handler's bug is answered and logged, never swallowed.

No running router has a bug on call, so these start the real admin server in-process on
an ephemeral port with a handler that fails the way a bug would.
"""

from __future__ import annotations

import asyncio
import logging

import httpx
import pytest

from sluicegate.router._admin_http import AdminRequest, AdminResponse, serve_admin


async def _broken(req: AdminRequest) -> AdminResponse:
    if req.path == "/fine":
        return AdminResponse(200, {"ok": True})
    raise RuntimeError("dictionary changed size during iteration")


async def _call(method: str, path: str) -> list[httpx.Response]:
    server = await serve_admin(_broken, "127.0.0.1", 0, None, frozenset())
    port = server.sockets[0].getsockname()[1]
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            # The same keep-alive connection answers again after the failure.
            return [await client.request(method, path), await client.get("/fine")]
    finally:
        server.close()


def test_an_unexpected_exception_answers_500_naming_it_and_is_logged_once_with_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.ERROR, logger="sluicegate.router._admin_http"):
        failed, after = asyncio.run(_call("PUT", "/v1/config"))
    assert failed.status_code == 500
    assert failed.json() == {
        "error": "internal error: RuntimeError: dictionary changed size during iteration"
    }
    assert after.status_code == 200 and after.json() == {"ok": True}
    records = [r for r in caplog.records if r.name == "sluicegate.router._admin_http"]
    assert len(records) == 1
    assert records[0].getMessage() == "admin request PUT /v1/config failed"
    assert records[0].exc_info is not None and records[0].exc_info[0] is RuntimeError
