"""Rule conditions: path prefix, host, header, cookie, query; globs; all must hold."""

from __future__ import annotations

from sluicegate.router._match import RequestView, compile_match
from sluicegate.spec.router import MatchSpec


def view(path: str = "/", query: str = "", host: str = "shop.example:8080",
         **headers: list[str]) -> RequestView:
    return RequestView(path=path, query_string=query, host=host,
                       headers={k.replace("_", "-"): v for k, v in headers.items()})


def test_header_match_ignores_name_and_value_case() -> None:
    rule = compile_match(MatchSpec(header={"X-Canary": "always"}))
    assert rule(view(x_canary=["ALWAYS"]))
    assert not rule(view(x_canary=["never"]))
    assert not rule(view())


def test_value_lists_match_any_and_globs_expand() -> None:
    rule = compile_match(MatchSpec(header={"x-user": ["beta-*", "admin"]}))
    assert rule(view(x_user=["beta-42"]))
    assert rule(view(x_user=["admin"]))
    assert not rule(view(x_user=["gamma-1"]))


def test_host_match_ignores_the_port() -> None:
    rule = compile_match(MatchSpec(host="*.example"))
    assert rule(view(host="shop.example:8080"))
    assert not rule(view(host="shop.other"))


def test_path_prefix_and_query_must_both_hold() -> None:
    rule = compile_match(MatchSpec(path_prefix="/api", query={"canary": "1"}))
    assert rule(view(path="/api/orders", query="canary=1&x=2"))
    assert not rule(view(path="/api/orders", query="canary=0"))
    assert not rule(view(path="/web", query="canary=1"))


def test_cookie_match_reads_the_named_cookie_only() -> None:
    rule = compile_match(MatchSpec(cookie={"plan": "pro"}))
    assert rule(view(cookie=["a=1; plan=pro"]))
    assert not rule(view(cookie=["plan=free"]))
    assert not rule(view(cookie=["notaplan=pro"]))
