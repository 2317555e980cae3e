"""The webhook engine's decisions as plain values: who gets which event, the retry schedule,
the signed body, and which settings are refused (at their field)."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from sluicegate.notify import (
    FAILED_KIND,
    TEST_KIND,
    Outcome,
    RetryPolicy,
    after_attempt,
    body_of,
    check_subscription,
    matches,
    redact,
    sign,
    verify,
    wants,
)


@pytest.mark.parametrize(
    ("patterns", "kind", "expected"),
    [
        (["deployment.*"], "deployment.created", True),
        (["deployment.*"], "deployment.step.weights", True),
        (["deployment.*"], "deployments.created", False),
        (["deployment.*"], "alarm.state", False),
        (["alarm.state"], "alarm.state", True),
        (["alarm.state"], "alarm.statex", False),
        (["*"], "anything.at.all", True),
        (["deployment.*", "alarm.*"], "alarm.state", True),
        ([], "deployment.created", False),
    ],
)
def test_kind_patterns(patterns: list[str], kind: str, expected: bool) -> None:
    assert matches(patterns, kind) is expected


def test_a_webhook_gets_matching_events_from_after_its_creation_only() -> None:
    def gets(event_id: int, kind: str, subject: str = "d-1") -> bool:
        return wants("wh_a", ["*"], 10, event_id=event_id, kind=kind, subject=subject)

    assert gets(11, "deployment.created")
    assert not gets(10, "deployment.created")


def test_a_test_event_goes_to_its_own_webhook_whatever_its_patterns() -> None:
    assert wants("wh_a", ["deployment.*"], 0, event_id=5, kind=TEST_KIND, subject="wh_a")
    assert not wants("wh_b", ["*"], 0, event_id=5, kind=TEST_KIND, subject="wh_a")


def test_a_webhook_never_gets_its_own_failure_but_others_may() -> None:
    assert not wants("wh_a", ["*"], 0, event_id=5, kind=FAILED_KIND, subject="wh_a")
    assert wants("wh_b", ["webhook.*"], 0, event_id=5, kind=FAILED_KIND, subject="wh_a")


def test_the_default_retry_schedule_doubles_from_one_second_up_to_five_minutes() -> None:
    policy = RetryPolicy()
    assert policy.schedule() == [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]
    assert sum(policy.schedule()) == 1111  # about 18.5 minutes before giving up
    assert RetryPolicy(max_attempts=4, base=0.5, cap=1).schedule() == [0.5, 1, 1]
    assert RetryPolicy(max_attempts=1).schedule() == []


@pytest.mark.parametrize("bad", [{"max_attempts": 0}, {"base": 0}, {"base": 2, "cap": 1}])
def test_a_retry_policy_must_make_sense(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="max_attempts must be at least 1"):
        RetryPolicy(**bad)  # type: ignore[arg-type]


def test_after_each_attempt_the_delivery_is_delivered_retried_or_given_up() -> None:
    policy = RetryPolicy(max_attempts=3, base=1, cap=60)
    assert after_attempt(policy, 0, False, 100.0) == Outcome("pending", 1, 101.0, None)
    assert after_attempt(policy, 1, False, 101.0) == Outcome("pending", 2, 103.0, None)
    assert after_attempt(policy, 2, False, 103.0) == Outcome("failed", 3, None, None)
    assert after_attempt(policy, 2, False, 103.0).gave_up
    assert after_attempt(policy, 2, True, 103.0) == Outcome("delivered", 3, None, 103.0)


def test_the_body_is_the_event_as_the_api_shows_it() -> None:
    event = {
        "id": 7,
        "kind": "deployment.created",
        "subject": "d-1",
        "message": "déployé",
        "actor": "alice",
        "at": 1700000000.5,
        "data": {"revision": "v2"},
        "extra": 1,
    }
    body = body_of(event)
    assert json.loads(body) == {k: v for k, v in event.items() if k != "extra"}
    assert list(json.loads(body)) == ["id", "kind", "subject", "message", "actor", "at", "data"]
    assert "déployé".encode() in body


def test_a_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    secret, body = "whsec_test_secret_0123", b'{"id":1}'
    assert sign(secret, 1700000000, body) == (
        "sha256=b359aca471a76d908e046c23b6367555fdb372fb6e4cbf8d14568613b79a2c89"
    )
    signature = sign(secret, 1700000000, body)
    assert verify(secret, "1700000000", body, signature, now=1700000000)
    assert not verify(secret, "1700000000", body, signature)  # the current time: too old
    assert verify(secret, "1700000000", body, signature, tolerance=None)  # replay on purpose
    assert verify(secret, 1700000000, body, signature, now=1700000299)
    assert not verify(secret, 1700000000, body, signature, now=1700000301)  # too old: replay
    at = {"now": 1700000000}
    assert not verify(secret, "1700000001", body, signature, **at)  # another timestamp
    assert not verify(secret, "1700000000", b'{"id":2}', signature, **at)  # another body
    assert not verify("another-secret-0123", "1700000000", body, signature, **at)
    assert not verify(secret, "soon", body, signature, **at)


def test_urls_in_logs_lose_credentials_and_query() -> None:
    assert redact("https://user:pw@hooks.example.com:8443/x/y?token=abc") == (
        "https://hooks.example.com:8443/x/y"
    )
    assert redact("http://127.0.0.1/hook") == "http://127.0.0.1/hook"


def test_good_settings_have_no_problems() -> None:
    assert check_subscription("https://hooks.example.com/x", ["deployment.*", "*"], None) == []
    assert check_subscription("http://127.0.0.1:9000/", ["alarm.state"], "s" * 16) == []


@pytest.mark.parametrize(
    ("url", "patterns", "secret", "path", "message"),
    [
        ("ftp://x/y", ["*"], None, "url", "must be an http:// or https:// URL with a host"),
        ("http:///nohost", ["*"], None, "url", "must be an http:// or https:// URL with a host"),
        ("http://x:99999/", ["*"], None, "url", "must be an http:// or https:// URL with a host"),
        ("http://x/a b", ["*"], None, "url", "must be an http:// or https:// URL with a host"),
        ("http://x/", [], None, "events", "give at least one event-kind pattern"),
        (
            "http://x/",
            ["Deployment.*"],
            None,
            "events[0]",
            "'Deployment.*' is not an event-kind pattern",
        ),
        ("http://x/", ["*", "a b"], None, "events[1]", "'a b' is not an event-kind pattern"),
        ("http://x/", ["*"], "short", "secret", "must be 16 to 200 printable characters"),
        ("http://x/", ["*"], "x" * 201, "secret", "must be 16 to 200 printable characters"),
    ],
)
def test_each_bad_setting_is_reported_at_its_field(
    url: str, patterns: list[str], secret: str | None, path: str, message: str
) -> None:
    problems = check_subscription(url, patterns, secret)
    assert len(problems) == 1, problems
    assert problems[0].path == path
    assert problems[0].message.startswith(message)


def test_the_verification_snippet_in_the_docs_accepts_our_signatures_only() -> None:
    text = (Path(__file__).resolve().parents[2] / "docs" / "notifications.md").read_text()
    match = re.search(r"```python\n(.*?)```", text, re.S)
    assert match
    namespace: dict[str, object] = {}
    exec(match.group(1), namespace)
    check = namespace["verify"]
    assert callable(check)
    secret, body = "whsec_docs_example_0123", b'{"id":5,"kind":"alarm.state"}'
    now = int(time.time())
    # The same argument order as sluicegate.notify.verify, and the same answers.
    assert check(secret, str(now), body, sign(secret, now, body)) is True
    assert verify(secret, str(now), body, sign(secret, now, body)) is True
    assert check(secret, str(now), body + b" ", sign(secret, now, body)) is False
    assert check(secret, str(now - 3600), body, sign(secret, now - 3600, body)) is False
    assert verify(secret, str(now - 3600), body, sign(secret, now - 3600, body)) is False
