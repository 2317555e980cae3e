"""Rule conditions: path prefix, host, header, cookie, query, flag; globs; all must hold."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from sluicegate.errors import SpecError
from sluicegate.router._flagslot import FlagSlot, compile_document
from sluicegate.router._match import Predicate, RequestView, compile_match
from sluicegate.spec.router import MatchSpec


def view(
    path: str = "/", query: str = "", host: str = "shop.example:8080", **headers: list[str]
) -> RequestView:
    return RequestView(
        path=path,
        query_string=query,
        host=host,
        headers={k.replace("_", "-"): v for k, v in headers.items()},
    )


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


def test_path_prefix_is_a_plain_string_prefix_of_the_path() -> None:
    rule = compile_match(MatchSpec(path_prefix="/api"))
    assert rule(view(path="/api")) and rule(view(path="/api/orders")) and rule(view(path="/apis"))
    assert not rule(view(path="/ap")) and not rule(view(path="/v1/api"))


@pytest.mark.parametrize(
    ("prefix", "message"),
    [
        ("/admin*", "path_prefix '/admin*' is a prefix, not a glob: '*' is not allowed"
         " (write '/admin'"),
        ("/a?b", "'?' is not allowed (write '/a'"),
        ("/public/../admin", "has a '.' or '..' segment"),
        ("admin", "path_prefix must start with /"),
    ],
)  # fmt: skip
def test_a_path_prefix_that_could_never_match_is_refused_naming_the_field(
    prefix: str, message: str
) -> None:
    from sluicegate.spec import RouterConfig, parse_document

    config = {
        "listeners": [
            {
                "name": "web",
                "port": 8080,
                "rules": [{"match": {"path_prefix": prefix}, "forward": [{"target_group": "a"}]}],
                "default": {"forward": [{"target_group": "a"}]},
            }
        ],
        "target_groups": [{"name": "a"}],
    }
    with pytest.raises(SpecError) as caught:
        parse_document(RouterConfig, config, "router.yaml")
    [problem] = caught.value.problems
    assert problem.path == "listeners[0].rules[0].match.path_prefix"
    assert message in problem.message


def test_cookie_match_reads_the_named_cookie_only() -> None:
    rule = compile_match(MatchSpec(cookie={"plan": "pro"}))
    assert rule(view(cookie=["a=1; plan=pro"]))
    assert not rule(view(cookie=["plan=free"]))
    assert not rule(view(cookie=["notaplan=pro"]))


# -- flag conditions -------------------------------------------------------------------------

FLAG_DOC = {
    "segments": {"beta": {"ids": ["alice", "bob"]}},
    "flags": {
        "new-checkout": {
            "type": "boolean",
            "rules": [{"when": {"segment": "beta"}, "variant": "on"}],
        }
    },
}


def loaded_slot(document: dict[str, Any] = FLAG_DOC, version: int = 1) -> FlagSlot:
    slot = FlagSlot()
    slot.load(compile_document(version, document))
    return slot


def flag_rule(
    slot: FlagSlot,
    variant: str | list[str] = "on",
    user_from: dict[str, str] | None = None,
    **more: Any,
) -> Predicate:
    spec = MatchSpec.model_validate(
        {
            "flag": {
                "key": "new-checkout",
                "variant": variant,
                "user_from": user_from or {"cookie": "uid"},
            },
            **more,
        }
    )
    return compile_match(spec, slot)


def test_flag_rule_matches_users_the_flag_serves_the_wanted_variant() -> None:
    rule = flag_rule(loaded_slot())
    assert rule(view(cookie=["uid=alice"]))
    assert not rule(view(cookie=["uid=carol"]))


def test_flag_rule_reads_the_user_from_a_header_or_a_query_parameter() -> None:
    slot = loaded_slot()
    by_header = flag_rule(slot, user_from={"header": "X-User"})
    by_query = flag_rule(slot, user_from={"query": "u"})
    assert by_header(view(x_user=["bob"])) and not by_header(view(x_user=["carol"]))
    assert by_query(view(query="u=bob")) and not by_query(view(query="u=carol"))


def test_flag_rule_with_a_variant_list_matches_any_of_them() -> None:
    rule = flag_rule(loaded_slot(), variant=["on", "off"])
    assert rule(view(cookie=["uid=carol"]))


def test_flag_rule_combines_with_other_conditions_as_and() -> None:
    rule = flag_rule(loaded_slot(), path_prefix="/checkout")
    assert rule(view(path="/checkout/pay", cookie=["uid=alice"]))
    assert not rule(view(path="/home", cookie=["uid=alice"]))


def test_requests_without_the_user_id_do_not_match_and_are_counted() -> None:
    slot = loaded_slot()
    rule = flag_rule(slot)
    assert not rule(view())
    assert not rule(view(cookie=["uid="]))
    assert slot.status()["unmatched"] == {"no_user_id": 2, "unknown_flag": 0, "eval_failed": 0}


def test_an_unknown_flag_or_no_flag_set_does_not_match_and_is_counted() -> None:
    empty = FlagSlot()
    assert not flag_rule(empty)(view(cookie=["uid=alice"]))
    other = loaded_slot({"flags": {"something-else": {"type": "boolean"}}})
    assert not flag_rule(other)(view(cookie=["uid=alice"]))
    assert empty.unknown_flag == 1 and other.unknown_flag == 1


def test_the_rule_follows_the_flag_set_loaded_after_it_was_compiled() -> None:
    slot = FlagSlot()
    rule = flag_rule(slot)
    assert not rule(view(cookie=["uid=carol"]))
    slot.load(compile_document(2, {**FLAG_DOC, "segments": {"beta": {"ids": ["carol"]}}}))
    assert rule(view(cookie=["uid=carol"]))
    assert not rule(view(cookie=["uid=alice"]))


def test_the_flag_condition_is_tested_last_so_counters_see_only_candidates() -> None:
    slot = loaded_slot()
    rule = flag_rule(slot, path_prefix="/checkout")
    assert not rule(view(path="/home"))
    assert slot.no_user_id == 0


def test_a_flag_document_that_does_not_validate_names_the_field() -> None:
    with pytest.raises(SpecError) as info:
        compile_document(1, {"flags": {"x": {"type": "bool"}}})
    assert "document.flags.x.type" in [p.path for p in info.value.problems]


@pytest.mark.parametrize(
    ("flag", "message"),
    [
        ({"key": "f", "variant": "on", "user_from": {}}, "exactly one of cookie, header or query"),
        ({"key": "f", "variant": "on", "user_from": {"cookie": "a", "header": "b"}}, "exactly one"),
        ({"key": "f", "variant": [], "user_from": {"cookie": "uid"}}, "variant name"),
        ({"key": "bad key", "variant": "on", "user_from": {"cookie": "uid"}}, "pattern"),
        ({"key": "f", "variant": "on", "user_from": {"header": "bad header"}}, "not a valid"),
    ],
)
def test_a_bad_flag_condition_is_refused(flag: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as info:
        MatchSpec.model_validate({"flag": flag})
    assert message in str(info.value)
