"""OpenFeature: our provider in the OpenFeature SDK, and the official OFREP provider
(``openfeature-provider-ofrep`` from PyPI) against a real ``sluice agent``."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from sluicegate.flags import bucket
from tests._support.flag_documents import mixed_flag_set
from tests._support.flag_sync import SyncServer, make_snapshot, start_agent

openfeature_api = pytest.importorskip("openfeature.api")
from openfeature.evaluation_context import EvaluationContext  # noqa: E402
from openfeature.event import EventDetails, ProviderEvent  # noqa: E402
from openfeature.exception import ErrorCode  # noqa: E402
from openfeature.flag_evaluation import Reason  # noqa: E402

USERS = [f"user-{i:04d}" for i in range(300)]


def _expected_split(user: str, weight: int) -> bool:
    return bucket("new-checkout", "", user) < weight * 1000


def test_our_provider_evaluates_every_type_and_emits_ready_changed_and_stale(
    sync_server: SyncServer,
) -> None:
    from sluicegate.openfeature import SluicegateProvider

    sync_server.publish(make_snapshot(1, mixed_flag_set(25)))
    provider = SluicegateProvider(sync_server.url, env="prod", key=sync_server.token)
    events: list[tuple[ProviderEvent, list[str] | None]] = []
    seen = threading.Condition()

    def record(event: ProviderEvent) -> None:
        def handler(details: EventDetails) -> None:
            with seen:
                events.append((event, details.flags_changed))
                seen.notify_all()

        return handler  # type: ignore[return-value]

    client = openfeature_api.get_client("sluice-test")
    for event in (
        ProviderEvent.PROVIDER_READY,
        ProviderEvent.PROVIDER_CONFIGURATION_CHANGED,
        ProviderEvent.PROVIDER_STALE,
    ):
        client.add_handler(event, record(event))
    openfeature_api.set_provider_and_wait(provider, "sluice-test")
    try:
        alice = EvaluationContext("alice", {"plan": "pro"})
        assert client.get_boolean_value("new-checkout", False, alice) is True
        assert client.get_string_value("banner", "", alice) == "Welcome back, pro"
        assert client.get_integer_value("max-items", 0, alice) == 3
        assert client.get_float_value("ratio", 0.0, alice) == 0.5
        assert client.get_object_value("theme", {}, alice) == {"bg": "#000", "fg": "#fff"}
        details = client.get_boolean_details("no-such-flag", False, alice)
        assert (details.value, details.error_code) == (False, ErrorCode.FLAG_NOT_FOUND)
        mismatch = client.get_string_details("new-checkout", "x", alice)
        assert (mismatch.value, mismatch.error_code) == ("x", ErrorCode.TYPE_MISMATCH)
        split = [
            client.get_boolean_details("new-checkout", False, EvaluationContext(u)) for u in USERS
        ]
        assert [d.value for d in split] == [_expected_split(u, 25) for u in USERS]
        assert {d.reason for d in split} == {Reason.SPLIT}

        sync_server.publish(make_snapshot(2, mixed_flag_set(60)))
        with seen:
            assert seen.wait_for(
                lambda: any(e == ProviderEvent.PROVIDER_CONFIGURATION_CHANGED for e, _ in events),
                10,
            )
        assert (ProviderEvent.PROVIDER_CONFIGURATION_CHANGED, ["new-checkout"]) in events
        assert [
            client.get_boolean_value("new-checkout", False, EvaluationContext(u)) for u in USERS
        ] == [_expected_split(u, 60) for u in USERS]

        sync_server.kill()
        with seen:
            assert seen.wait_for(
                lambda: any(e == ProviderEvent.PROVIDER_STALE for e, _ in events), 10
            )
        assert client.get_boolean_value("new-checkout", False, alice) is True
    finally:
        openfeature_api.clear_providers()


def test_the_official_ofrep_provider_reads_flags_from_the_agent(
    sync_server: SyncServer, tmp_path: Path
) -> None:
    ofrep = pytest.importorskip("openfeature.contrib.provider.ofrep")
    sync_server.publish(make_snapshot(1, mixed_flag_set(25)))
    with start_agent(sync_server.url, sync_server.token, tmp_path / "cache") as agent:
        agent.wait_for(lambda: agent.get("/healthz").status_code == 200, what="ready")
        openfeature_api.set_provider(ofrep.OFREPProvider(agent.url), "ofrep-test")
        client = openfeature_api.get_client("ofrep-test")
        try:
            alice = EvaluationContext("alice", {"plan": "pro"})
            bob = EvaluationContext("bob", {"plan": "free"})
            hit = client.get_boolean_details("new-checkout", False, alice)
            assert (hit.value, hit.variant, hit.reason) == (True, "on", Reason.TARGETING_MATCH)
            assert client.get_string_value("banner", "", alice) == "Welcome back, pro"
            assert client.get_string_value("banner", "", bob) == "Go pro"
            assert client.get_integer_value("max-items", 0, bob) == 3
            assert client.get_float_value("ratio", 0.0, bob) == 0.5
            assert client.get_object_value("theme", {}, bob) == {"bg": "#000", "fg": "#fff"}
            split = [
                client.get_boolean_details("new-checkout", False, EvaluationContext(u))
                for u in USERS[:100]
            ]
            assert [d.value for d in split] == [_expected_split(u, 25) for u in USERS[:100]]
            assert {d.reason for d in split} == {Reason.SPLIT}
            missing = client.get_boolean_details("no-such-flag", True, alice)
            assert (missing.value, missing.error_code) == (True, ErrorCode.FLAG_NOT_FOUND)
            started = time.monotonic()
            for u in USERS:
                client.get_boolean_value("new-checkout", False, EvaluationContext(u))
            per_call = (time.monotonic() - started) / len(USERS) * 1e3
            print(f"OFREP provider -> agent: {per_call:.2f} ms per evaluation (requests)")
        finally:
            openfeature_api.clear_providers()
