"""The webhook engine against a real HTTP receiver on 127.0.0.1: retries with backoff, signed
bodies, giving up with an event, timeouts, filtering, and a cursor that survives restarts."""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import trustme

from sluicegate.clock import ManualClock
from sluicegate.errors import SpecError
from sluicegate.notify import RetryPolicy, WebhookEngine, verify
from sluicegate.notify._targets import check_target
from sluicegate.store import Store
from tests._support.receiver import Hang, Receiver

SECRET = "whsec_for_tests_0123456789"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def store(tmp_path: Path, clock: ManualClock) -> Iterator[Store]:
    with Store.open(tmp_path / "state", clock=clock) as opened:
        yield opened


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


def engine(store: Store, clock: ManualClock, **kw: object) -> WebhookEngine:
    kw.setdefault("policy", RetryPolicy(max_attempts=5, base=1, cap=60))
    kw.setdefault("timeout", 30.0)  # receivers here answer at once; no timing in a verdict
    kw.setdefault("allow_private", True)  # the receivers listen on 127.0.0.1
    return WebhookEngine(store, clock, **kw)  # type: ignore[arg-type]


async def step(e: WebhookEngine) -> int:
    """One tick, then wait for the attempts it started; returns how many started."""
    started = (await e.tick()).started
    await e.drain()
    return started


async def settle(e: WebhookEngine, most: int = 1000) -> None:
    """Tick until no attempt is due (the clock does not move); fails instead of spinning."""
    for _ in range(most):
        if not await step(e):
            return
    raise AssertionError(f"attempts still due after {most} ticks with the clock stopped")


def test_a_delivery_that_fails_twice_is_delivered_on_the_third_attempt_signed_and_intact(
    store: Store, clock: ManualClock, receiver: Receiver
) -> None:
    receiver.script("/hook", [500, 500, 200])
    hook = store.webhooks.create(receiver.url("/hook"), ["deployment.*"], SECRET)
    event = store.events.append(
        "deployment.created", "d-1", "deploy shop - -> v1", actor="alice", data={"revision": "v1"}
    )

    async def scenario() -> list[int]:
        e = engine(store, clock)
        started = [await step(e)]  # attempt 1 -> 500, next in 1 s
        clock.advance(0.5)
        started.append(await step(e))  # not due yet
        clock.advance(0.5)
        started.append(await step(e))  # attempt 2 -> 500, next in 2 s
        clock.advance(1.9)
        started.append(await step(e))  # not due yet
        clock.advance(0.1)
        started.append(await step(e))  # attempt 3 -> 200
        clock.advance(100)
        started.append(await step(e))  # nothing left
        await e.close()
        return started

    assert asyncio.run(scenario()) == [1, 0, 1, 0, 1, 0]
    got = receiver.to("/hook")
    assert [r.answered for r in got] == [500, 500, 200]
    assert [r.header("X-Sluicegate-Attempt") for r in got] == ["1", "2", "3"]
    assert {r.header("X-Sluicegate-Delivery") for r in got} == {
        str(store.webhook_deliveries.list(hook.id)[0].id)
    }
    last = got[-1]
    assert last.header("X-Sluicegate-Event") == "deployment.created"
    assert last.header("Content-Type") == "application/json"
    assert last.header("X-Sluicegate-Timestamp") == str(int(clock.now() - 100))
    assert verify(
        SECRET,
        last.header("X-Sluicegate-Timestamp"),
        last.body,
        last.header("X-Sluicegate-Signature"),
        now=clock.now() - 100,
    )
    assert json.loads(last.body) == {
        "id": event.id,
        "kind": "deployment.created",
        "subject": "d-1",
        "message": "deploy shop - -> v1",
        "actor": "alice",
        "at": event.at,
        "data": {"revision": "v1"},
    }
    delivery = store.webhook_deliveries.list(hook.id)[0]
    assert (delivery.status, delivery.attempts, delivery.last_status) == ("delivered", 3, 200)
    assert delivery.last_error is None and delivery.delivered_at == clock.now() - 100


def test_after_the_last_attempt_the_delivery_is_given_up_with_a_webhook_failed_event(
    store: Store, clock: ManualClock, receiver: Receiver
) -> None:
    receiver.script("/down", [503] * 10)
    failing = store.webhooks.create(receiver.url("/down"), ["*"], SECRET)
    watcher = store.webhooks.create(receiver.url("/ops"), ["webhook.*"], SECRET)
    event = store.events.append("alarm.state", "api-5xx", "OK -> ALARM")

    async def scenario() -> None:
        e = engine(store, clock, policy=RetryPolicy(max_attempts=3, base=1, cap=60))
        for _ in range(6):
            await step(e)
            clock.advance(10)
        await e.close()

    asyncio.run(scenario())
    assert [r.answered for r in receiver.to("/down")] == [503, 503, 503]
    delivery = store.webhook_deliveries.list(failing.id)[0]
    assert (delivery.status, delivery.attempts, delivery.last_status) == ("failed", 3, 503)
    assert delivery.last_error == "HTTP 503"  # the status only: never the receiver's reply
    assert "failing on purpose" not in str(store.events.list(limit=1000))
    (failed,) = store.events.list(kind="webhook.failed")
    assert failed.subject == failing.id
    assert failed.data["event_id"] == event.id and failed.data["attempts"] == 3
    assert failed.data["url"] == receiver.url("/down")
    assert f"gave up on event {event.id} (alarm.state)" in failed.message
    # Others hear about it; the failing webhook does not get its own failure (no loop).
    assert [json.loads(r.body)["kind"] for r in receiver.to("/ops")] == ["webhook.failed"]
    assert [d.event_id for d in store.webhook_deliveries.list(watcher.id)] == [failed.id]
    assert [d.event_id for d in store.webhook_deliveries.list(failing.id)] == [event.id]


def test_a_receiver_that_does_not_answer_in_time_is_retried(
    store: Store, clock: ManualClock, receiver: Receiver
) -> None:
    receiver.script("/slow", [Hang(30), 204])
    hook = store.webhooks.create(receiver.url("/slow"), ["*"], SECRET)
    store.events.append("deployment.created", "d-1", "created")

    async def scenario() -> None:
        impatient = engine(store, clock, timeout=0.3)
        await step(impatient)
        await impatient.close()
        after_first = store.webhook_deliveries.list(hook.id)[0]
        assert (after_first.status, after_first.attempts) == ("pending", 1)
        assert after_first.last_status is None
        assert after_first.last_error == "no answer within 0.3s"
        clock.advance(1)
        patient = engine(store, clock, timeout=30)  # the retry must not depend on the load
        await step(patient)
        await patient.close()

    asyncio.run(scenario())
    delivery = store.webhook_deliveries.list(hook.id)[0]
    assert (delivery.status, delivery.attempts, delivery.last_status) == ("delivered", 2, 204)


def test_a_slow_subscriber_never_holds_up_another(
    store: Store, clock: ManualClock, receiver: Receiver
) -> None:
    receiver.script("/slow", [Hang(60)])
    slow = store.webhooks.create(receiver.url("/slow"), ["*"], SECRET)
    fast = store.webhooks.create(receiver.url("/fast"), ["*"], SECRET)
    store.events.append("deployment.created", "d-1", "created")

    async def scenario() -> tuple[int, str, str]:
        e = engine(store, clock, timeout=60)
        assert (await e.tick()).started == 2
        while not receiver.to("/fast") or e.in_flight > 1:
            await asyncio.sleep(0.02)  # the fast one finishes while the slow one hangs
        result = (
            e.in_flight,
            store.webhook_deliveries.list(fast.id)[0].status,
            store.webhook_deliveries.list(slow.id)[0].status,
        )
        await e.close()
        return result

    assert asyncio.run(scenario()) == (1, "delivered", "pending")


def test_only_matching_kinds_after_the_webhook_was_created_are_sent(
    store: Store, clock: ManualClock, receiver: Receiver
) -> None:
    store.events.append("deployment.created", "d-0", "before the webhook existed")
    hook = store.webhooks.create(receiver.url("/hook"), ["deployment.*", "alarm.state"], SECRET)
    off = store.webhooks.create(receiver.url("/off"), ["*"], SECRET)
    store.webhooks.set_enabled(off.id, False)
    for kind in (
        "deployment.created",
        "service.applied",
        "alarm.state",
        "alarm.deleted",
        "deployment.succeeded",
        "replica.started",
    ):
        store.events.append(kind, "x", kind)

    async def scenario() -> None:
        e = engine(store, clock)
        await settle(e)
        await e.close()

    asyncio.run(scenario())
    got = receiver.to("/hook")
    assert [r.header("X-Sluicegate-Event") for r in got] == [
        "deployment.created",
        "alarm.state",
        "deployment.succeeded",
    ]  # in log order
    assert all(json.loads(r.body)["subject"] == "x" for r in got)
    assert receiver.to("/off") == []
    assert len(store.webhook_deliveries.list(hook.id)) == 3


def test_a_restarted_engine_goes_on_from_its_cursor_and_resends_only_what_was_in_flight(
    tmp_path: Path, clock: ManualClock, receiver: Receiver
) -> None:
    receiver.script("/hook", [200, Hang(60)])
    with Store.open(tmp_path / "state", clock=clock) as store:
        hook = store.webhooks.create(receiver.url("/hook"), ["*"], SECRET)
        first = store.events.append("deployment.created", "d-1", "one")

        async def before_the_crash() -> None:
            e = engine(store, clock, timeout=60)
            await step(e)  # event 1 delivered
            store.events.append("deployment.step", "d-1", "two")
            await e.tick()  # event 2 in flight (the receiver hangs)
            while len(receiver.to("/hook")) < 2:
                await asyncio.sleep(0.01)
            assert e.in_flight == 1
            await e.close()  # the server stops mid-delivery

        asyncio.run(before_the_crash())
    with Store.open(tmp_path / "state", clock=clock) as store:
        third = store.events.append("deployment.succeeded", "d-1", "three")

        async def after_the_restart() -> None:
            e = engine(store, clock)
            await settle(e)
            await e.close()

        asyncio.run(after_the_restart())
        assert store.webhook_deliveries.cursor() == third.id
        deliveries = {d.event_id: d for d in store.webhook_deliveries.list(hook.id)}
    receiver.wait_for(4, "/hook")
    bodies = [json.loads(r.body)["message"] for r in receiver.to("/hook")]
    # "two" was cut off mid-flight (the hanging request is answered when the receiver stops,
    # or never): it is sent again with the same delivery id; "one" and "three" exactly once.
    assert bodies.count("one") == 1 and bodies.count("three") == 1
    twos = [r for r in receiver.to("/hook") if json.loads(r.body)["message"] == "two"]
    assert len(twos) == 2
    assert {r.header("X-Sluicegate-Delivery") for r in twos} == {str(deliveries[first.id + 1].id)}
    assert all(d.status == "delivered" for d in deliveries.values())


def test_a_test_event_reaches_only_the_webhook_it_names(
    store: Store, clock: ManualClock, receiver: Receiver
) -> None:
    a = store.webhooks.create(receiver.url("/a"), ["deployment.*"], SECRET)
    store.webhooks.create(receiver.url("/b"), ["*"], SECRET)
    store.events.append("webhook.test", a.id, "a test delivery", data={"webhook": a.id})

    async def scenario() -> None:
        e = engine(store, clock)
        await step(e)
        await e.close()

    asyncio.run(scenario())
    assert [r.header("X-Sluicegate-Event") for r in receiver.to("/a")] == ["webhook.test"]
    assert receiver.to("/b") == []


@pytest.mark.parametrize(
    ("concurrency", "per_webhook", "started"),
    [
        (4, 2, 4),  # the overall bound
        (10, 2, 6),  # two for each of the three webhooks
        (10, 1, 3),
    ],
)
def test_attempts_in_flight_are_bounded_overall_and_per_webhook(
    store: Store,
    clock: ManualClock,
    receiver: Receiver,
    concurrency: int,
    per_webhook: int,
    started: int,
) -> None:
    for path in ("/a", "/b", "/c"):
        receiver.script(path, [Hang(60)] * 5)
        store.webhooks.create(receiver.url(path), ["*"], SECRET)
    for i in range(3):
        store.events.append("deployment.step", "d-1", f"step {i}")

    async def scenario() -> list[int]:
        e = engine(store, clock, timeout=60, concurrency=concurrency, per_webhook=per_webhook)
        first, second = (await e.tick()).started, (await e.tick()).started
        in_flight = e.in_flight
        await e.close()
        return [first, second, in_flight]

    assert asyncio.run(scenario()) == [started, 0, started]
    assert len(store.webhook_deliveries.due(clock.now(), limit=100)) == 9  # all still pending


def test_the_loop_sends_a_webhooks_next_delivery_as_soon_as_one_ends(
    store: Store, clock: ManualClock, receiver: Receiver
) -> None:
    # One delivery at a time per webhook; the next must not wait for the (here: an hour's)
    # interval between ticks.
    store.webhooks.create(receiver.url("/hook"), ["*"], SECRET)

    async def scenario() -> list[str]:
        e = engine(store, clock)
        await e.tick()  # the first run sets the cursor
        for i in range(3):
            store.events.append("deployment.step", "d-1", f"step {i}")
        task = asyncio.get_running_loop().create_task(e.run(interval=3600))
        while len(receiver.to("/hook")) < 3:
            await asyncio.sleep(0.02)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return [json.loads(r.body)["message"] for r in receiver.to("/hook")]

    assert asyncio.run(asyncio.wait_for(scenario(), 30)) == ["step 0", "step 1", "step 2"]


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/hook",
        "http://2130706433/hook",  # 127.0.0.1 as one decimal number
        "http://0x7f.1/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://localhost/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://10.0.0.7/hook",
        "http://[fd00:ec2::254]/hook",
    ],
)
def test_a_target_on_this_host_or_a_private_network_is_refused_in_every_spelling(
    url: str,
) -> None:
    with pytest.raises(SpecError) as err:
        asyncio.run(check_target(url, allow_private=False))
    assert err.value.problems[0].path == "url"
    assert "--allow-private-webhooks" in err.value.problems[0].message
    asyncio.run(check_target(url, allow_private=True))  # the operator allowed it


def test_a_delivery_to_a_private_target_fails_its_attempt_without_sending(
    store: Store, clock: ManualClock, receiver: Receiver
) -> None:
    hook = store.webhooks.create(receiver.url("/private"), ["alarm.*"], "s3cret")
    store.events.append("alarm.state", "shop/high-5xx", "ALARM", actor="alarms")

    async def scenario() -> None:
        e = engine(store, clock, allow_private=False)
        await step(e)
        await e.close()

    asyncio.run(scenario())
    assert receiver.to("/private") == []
    delivery = store.webhook_deliveries.list(hook.id)[0]
    assert delivery.last_status is None
    assert "a loopback address" in (delivery.last_error or "")


def test_the_api_refuses_a_private_webhook_at_creation_unless_allowed(tmp_path: Path) -> None:
    from tests._support.server import running_server

    body = {"url": "http://169.254.169.254/latest/meta-data", "events": ["alarm.*"]}
    with running_server(tmp_path / "state") as server:
        r = httpx.post(f"{server.url}/v1/webhooks", json=body,
                       headers={"Authorization": f"Bearer {server.token}"})  # fmt: skip
        assert r.status_code == 422
        assert r.json()["problems"][0]["path"] == "url"
        assert "--allow-private-webhooks" in r.json()["problems"][0]["message"]


def test_a_https_receiver_is_verified_and_an_untrusted_certificate_fails_the_attempt(
    store: Store, clock: ManualClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca = trustme.CA()
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    with Receiver(tls=server_ctx) as receiver:
        hook = store.webhooks.create(receiver.url("/hook"), ["*"], SECRET)
        store.events.append("deployment.created", "d-1", "created")

        async def attempt() -> None:
            e = engine(store, clock)
            await step(e)
            await e.close()

        asyncio.run(attempt())  # the server's trust does not include this CA
        delivery = store.webhook_deliveries.list(hook.id)[0]
        assert delivery.status != "delivered" and delivery.attempts == 1
        assert "CERTIFICATE_VERIFY_FAILED" in (delivery.last_error or "")
        assert receiver.requests == []
        ca_file = tmp_path / "ca.pem"
        ca.cert_pem.write_to_path(str(ca_file))
        monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))  # the server's trust: its env
        clock.advance(10)
        asyncio.run(attempt())
        delivery = store.webhook_deliveries.list(hook.id)[0]
        assert (delivery.status, delivery.attempts) == ("delivered", 2)
        assert len(receiver.to("/hook")) == 1
