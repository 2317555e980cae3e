"""The console in a real browser (Playwright driving Debian's chromium) against a real
``sluice server``: log in, watch a canary advance live, roll it back with a reason, find the
reason and the token's name in the activity; a reader sees no buttons and is refused.

One server and one browser for the module; every case reuses them. Skipped when chromium
or Playwright is missing, unless SLUICEGATE_REQUIRE_ALL=1 (then it fails).
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests._support import APP_PATH, free_port, require
from tests._support.rawhttp import get_many
from tests._support.server import Server, running_server

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

try:
    from playwright.sync_api import Browser, Page, expect, sync_playwright
except ImportError:  # pragma: no cover - the skip below says why
    sync_playwright = None  # type: ignore[assignment]

pytestmark = pytest.mark.slow


def shop(port: int, gate: bool = True) -> dict[str, Any]:
    steps: list[dict[str, Any]] = [{"weight": 20, "pause": "2s"}, {"weight": 50}]
    steps.append({"pause": "until_promoted"} if gate else {"weight": 100})
    return {
        "service": "shop",
        "listener": {"port": port},
        "health_check": {"path": "/healthz", "interval": "500ms", "timeout": "400ms"},
        "compute": {
            "local": {
                "command": [
                    sys.executable,
                    str(APP_PATH),
                    "--port",
                    "{port}",
                    "--version",
                    "{revision}",
                ],
                "replicas": 1,
                "stop_grace": "1s",
            }
        },
        "deployment": {"config": {"steps": steps}, "termination_wait": "0s"},
        "alarms": [  # watched, never rolls back: the alarm page's story
            {
                "name": "busy",
                "metric": {
                    "source": "router",
                    "name": "requests",
                    "dimensions": {"listener": "{service}"},
                },
                "statistic": "Sum",
                "period": "2s",
                "evaluation_periods": 2,
                "threshold": 5000,
                "comparison": "GreaterThanThreshold",
                "guard": False,
            }
        ],
    }


class Load:
    """Steady requests through the router, so the guard has something to judge."""

    def __init__(self, port: int) -> None:
        self.port, self.stop = port, threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        while not self.stop.wait(0.05):
            with contextlib.suppress(OSError):
                get_many(self.port, 20, batch=10)


def token(server: Server, role: str, name: str) -> str:
    r = httpx.post(
        server.url + "/v1/tokens",
        json={"role": role, "name": name},
        headers={"Authorization": f"Bearer {server.token}"},
        timeout=30,
    )
    assert r.status_code == 201, r.text
    value: str = r.json()["token"]
    return value


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    require(Path(CHROMIUM).exists(), "chromium is not installed (apt-get install chromium)")
    require(sync_playwright is not None, "playwright is not installed (pip install playwright)")
    tmp = tmp_path_factory.mktemp("console-browser")
    port = free_port()
    with running_server(tmp / "state") as server:
        spec = tmp / "shop.yaml"
        spec.write_text(yaml.safe_dump(shop(port)))
        server.cli("apply", "-f", str(spec))
        first = re.search(r"deployment (\S+):", server.cli("deploy", "shop", "--revision", "v1"))
        assert first
        server.wait_phase(first.group(1), {"succeeded"})
        load = Load(port)
        load.thread.start()
        with sync_playwright() as pw:
            # launch() gives chromium a fresh temporary user-data-dir of its own
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            try:
                yield {
                    "server": server,
                    "browser": browser,
                    "deployer": token(server, "deployer", "alice"),
                    "reader": token(server, "reader", "rita"),
                    "tmp": tmp,
                }
            finally:
                browser.close()
                load.stop.set()
                load.thread.join(10)


def shot(page: Page, name: str) -> None:
    """With SLUICEGATE_CONSOLE_SCREENSHOTS=DIR, save the page (how docs/console/*.png are
    made: ``SLUICEGATE_CONSOLE_SCREENSHOTS=docs/console pytest tests/console/test_browser.py``)."""
    where = os.environ.get("SLUICEGATE_CONSOLE_SCREENSHOTS")
    if where:
        page.set_viewport_size({"width": 1280, "height": 900})
        page.screenshot(path=str(Path(where) / f"{name}.png"), full_page=True)


def logged_in(browser: Browser, server: Server, tok: str) -> Page:
    page = browser.new_context(base_url=server.url).new_page()
    page.set_default_timeout(15_000)
    page.goto("/ui/")
    expect(page).to_have_url(re.compile(r"/ui/login$"))
    page.fill("#token", tok)
    page.click("button[type=submit]")
    expect(page).to_have_url(re.compile(r"/ui/$"))
    return page


def test_a_canary_advances_live_and_rolls_back_by_click_with_the_reason_in_the_activity(
    world: dict[str, Any],
) -> None:
    server, browser = world["server"], world["browser"]
    page = logged_in(browser, server, world["deployer"])
    expect(page.locator("#who")).to_have_text("alice (deployer)")
    row = page.locator("#svc-shop")
    expect(row).to_have_attribute("data-phase", "succeeded")
    page.evaluate("window.notReloaded = true")

    out = server.cli("deploy", "shop", "--revision", "v2")
    dep = re.search(r"deployment (\S+):", out)
    assert dep
    # the row follows the deployment without a reload: 20 %, then 50 % at the gate
    expect(row.locator(".weight-text")).to_have_attribute("data-set", "20")
    expect(row.locator(".weight-text")).to_have_attribute("data-set", "50")
    expect(row).to_have_attribute("data-phase", "paused_until_promoted")
    expect(row.locator("td.needs")).to_have_text("waiting for promote")
    shot(page, "overview")
    assert page.evaluate("window.notReloaded") is True

    row.locator("a", has_text="paused_until_promoted").click()
    expect(page.locator("h1")).to_contain_text("v1 → v2")
    expect(page.locator("#verdicts")).to_contain_text("Errors (5xx): green answered")
    page.locator("input[aria-label='reason for rollback']").fill("checkout looks slow")
    page.click("#do-rollback")
    expect(page.locator("#phase")).to_have_text("rolled_back")
    expect(page.locator("ol.timeline")).to_contain_text("rollback asked by alice")

    page.goto("/ui/activity?actor=alice")
    activity = page.locator("#activity")
    expect(activity).to_contain_text("rollback asked by alice: checkout looks slow")
    expect(activity.locator("td.actor").first).to_have_text("alice")
    shot(page, "activity")

    # retry it by click, then promote it past its gate by click
    page.goto(f"/ui/deployments/{dep.group(1)}")
    page.locator("input[aria-label='reason for retry']").fill("fixed the slow query")
    page.click("#do-retry")
    expect(page.locator("h1")).to_contain_text("v1 → v2")
    expect(page.locator("#phase")).to_have_text("paused_until_promoted", timeout=30_000)
    assert dep.group(1) not in page.url
    page.locator("input[aria-label='reason for promote']").fill("numbers look good")
    page.click("#do-promote")
    expect(page.locator("#phase")).to_have_text("succeeded", timeout=30_000)
    expect(page.locator("ol.timeline")).to_contain_text("promote asked by alice: numbers look good")


def test_a_reader_sees_no_action_and_a_forged_post_is_refused(world: dict[str, Any]) -> None:
    server, browser = world["server"], world["browser"]
    dep = server.api("/deployments?service=shop&limit=1")[0]["id"]
    page = logged_in(browser, server, world["reader"])
    page.goto(f"/ui/deployments/{dep}")
    expect(page.locator("h1")).to_contain_text("shop")
    assert page.locator("#actions").count() == 0
    assert page.locator("form.action").count() == 0
    csrf = page.locator("input[name=csrf]").first.get_attribute("value")
    assert csrf
    # the reader's own session and CSRF token: the role still says no
    forged = page.request.post(
        f"/ui/deployments/{dep}/retry",
        form={"csrf": csrf, "reason": "let me"},
        headers={"Origin": server.url},
    )
    assert forged.status == 403, forged.text()
    assert "deployer" in forged.text()
    # a deployer's session without the CSRF token is refused too
    alice = logged_in(browser, server, world["deployer"])
    no_csrf = alice.request.post(
        f"/ui/deployments/{dep}/retry", form={"reason": "x"}, headers={"Origin": server.url}
    )
    assert no_csrf.status == 403, no_csrf.text()
    assert "CSRF" in no_csrf.text()
    assert server.api("/deployments?service=shop&limit=1")[0]["id"] == dep  # nothing new


def test_a_bad_release_is_rolled_back_by_the_guard_and_its_page_says_why_with_numbers(
    world: dict[str, Any],
) -> None:
    server, browser = world["server"], world["browser"]
    page = logged_in(browser, server, world["reader"])
    out = server.cli("deploy", "shop", "--revision", "v3", "--set", "env.SHOP_FAIL_PERCENT=60")
    dep = re.search(r"deployment (\S+):", out)
    assert dep
    page.goto(f"/ui/deployments/{dep.group(1)}")
    expect(page.locator("#phase")).to_have_text("rolled_back", timeout=30_000)
    verdicts = page.locator("#verdicts")
    expect(verdicts).to_contain_text("guard fired: default canary guard")
    expect(verdicts).to_contain_text(
        re.compile(r"green answered \d+ of \d+ requests with an error")
    )
    expect(verdicts).to_contain_text("Verdict: green is worse than blue.")
    expect(verdicts).to_contain_text(re.compile(r"p-value \S+ is below the bound"))
    shot(page, "deployment-guard-fired")
    page.goto("/ui/")
    expect(page.locator("#svc-shop")).to_have_attribute("data-phase", "rolled_back")


def test_without_javascript_the_pages_still_read_and_link(world: dict[str, Any]) -> None:
    server, browser = world["server"], world["browser"]
    context = browser.new_context(base_url=server.url, java_script_enabled=False)
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.goto("/ui/login")
    page.fill("#token", world["reader"])
    page.click("button[type=submit]")
    expect(page.locator("#svc-shop")).to_be_visible()
    page.locator("#svc-shop td a").nth(1).click()  # the phase links to the deployment
    expect(page.locator("h1")).to_contain_text("shop:")
    page.click("text=Activity")
    expect(page.locator("#activity")).to_contain_text("deployment.")
    context.close()


def test_flags_diff_two_versions_and_follow_a_rollout(world: dict[str, Any]) -> None:
    server, browser = world["server"], world["browser"]
    admin = {"Authorization": f"Bearer {server.token}"}

    def put(value: str, rollout: dict[str, Any] | None = None) -> None:
        doc = {"flags": {"banner": {"type": "string", "variants": {"v": value},
                                    "default_variant": "v"}}}  # fmt: skip
        body: dict[str, Any] = {"document": doc, "message": value}
        if rollout:
            body["rollout"] = rollout
        r = httpx.put(server.url + "/v1/flags/web", json=body, headers=admin, timeout=30)
        assert r.status_code == 201, r.text

    r = httpx.post(server.url + "/v1/flags/envs", json={"name": "web"}, headers=admin)
    assert r.status_code == 201, r.text
    put("hello")
    put("hi")
    put("hey", {"strategy": {"steps": [{"weight": 40, "pause": "1h"}]}})
    page = logged_in(browser, server, world["deployer"])
    page.click("text=Flags")
    page.click("a[href='/ui/flags/web']")
    expect(page.locator("#rollout-phase")).to_have_text("rolling_out")
    expect(page.locator("#rollout")).to_contain_text("40 % of users on the new version")
    page.check("input[aria-label='diff from 1']")
    page.check("input[aria-label='diff to 3']")
    page.click("#show-diff")
    expect(page.locator("#diff")).to_contain_text("hello")
    expect(page.locator("#diff")).to_contain_text("hey")
    shot(page, "flags")
    page.locator("input[aria-label='reason for rollout rollback']").fill("typo in the banner")
    page.click("#do-rollout-rollback")
    expect(page.locator("#rollout-phase")).to_have_text("rolled_back")
    expect(page.locator("#rollout")).to_contain_text("rollback asked by alice: typo in the banner")


def test_an_alarm_shows_its_datapoints_and_a_drill_by_click_lands_in_its_history(
    world: dict[str, Any],
) -> None:
    server, browser = world["server"], world["browser"]
    page = logged_in(browser, server, world["deployer"])
    page.click("text=Alarms")
    page.click("a[href='/ui/alarms/shop/busy']")
    expect(page.locator("#why")).to_contain_text("Rule: Sum GreaterThanThreshold 5000")
    page.select_option("select[name=state]", "ALARM")
    page.locator("input[aria-label='reason for the state']").fill("game day")
    page.click("#do-set-state")
    expect(page.locator("#alarm-state")).to_have_text("ALARM")
    expect(page.locator("#alarm-live")).to_contain_text("game day")
    expect(page.locator("#alarm-live")).to_contain_text("alice")
    shot(page, "alarm")


def test_the_cli_reason_shows_in_the_console_under_the_token_name(world: dict[str, Any]) -> None:
    server, browser = world["server"], world["browser"]
    dep = re.search(r"deployment (\S+):", server.cli("deploy", "shop", "--revision", "v4"))
    assert dep
    server.wait_phase(dep.group(1), {"paused_until_promoted"})
    out = server.cli("rollback", "shop", "--reason", "not today")
    assert "rollback requested" in out
    page = logged_in(browser, server, world["reader"])
    page.goto(f"/ui/deployments/{dep.group(1)}")
    expect(page.locator("#phase")).to_have_text("rolled_back")
    expect(page.locator("ol.timeline")).to_contain_text("rollback asked by first-admin: not today")
