"""The dashboard's flow panel in a real browser (Debian's chromium via Playwright, against a real
`reliq gateway` and `reliq worker`): the limits in force, the intake (max_queued, backlog per
level), the busiest key with its holder and waiters, each waiter's reason, and the reason on the
invocation's page (issue 14)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ..conftest import Names
from .test_dashboard_browser import ARGS, CHROMIUM, System, _need_browser, poll


@pytest.fixture
def system(url: str, names: Names, tmp_path: Path) -> Iterator[System]:
    _need_browser()
    s = System(url, names("dflow"), tmp_path)
    try:
        yield s
    finally:
        s.close()


def test_the_flow_panel_shows_limits_keys_and_why_each_waits(system: System) -> None:
    from playwright.sync_api import expect, sync_playwright

    s = system
    s.spawn("gateway", "gateway", "--port", str(s.port), "--durability", "fsync")
    s.spawn("worker", "worker", "tests.gateway.dash_flow_app:app", "--heartbeat-interval", "0.3")
    poll("gateway ready", lambda: s.http("GET", "/readyz"))
    poll("handlers registered", lambda: s.service in s.http("GET", "/services")["services"])
    ids = [s.http("POST", f"/send/{s.service}/work", {"account": "a"})["id"] for _ in range(3)]
    poll("the first one runs", lambda: s.http("GET", f"/invocations/{ids[0]}")["state"] == "running")

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(f"{s.base}/dashboard#/s/{s.service}/flow")
        expect(page.locator('#flow-specs tr[data-handler="work"]')).to_contain_text("1 at once per account")
        intake = page.locator("#flow-intake tbody tr")
        expect(intake.locator(".cap")).to_have_text("1000 (code)")
        expect(intake.locator(".normal")).to_have_text("1")  # the holder's entry; the others wait in line
        expect(intake.locator(".high")).to_have_text("0")
        key = page.locator('#flow-keys tr[data-key="a"]')
        expect(key).to_contain_text("1")
        expect(key.locator("td").nth(3)).to_have_text("2")  # waiting
        expect(page.locator(f'#flow-waiting tr[data-invocation="{ids[2]}"] .reason')).to_have_text(
            "concurrency key a, 1 ahead (1 running)"
        )
        page.screenshot(path=str(s.tmp / "flow.png"), full_page=True)
        page.locator(f'#flow-waiting tr[data-invocation="{ids[1]}"]').get_by_role("link", name=ids[1]).click()
        expect(page.locator("#wait-reason")).to_have_text("concurrency key a, 0 ahead (1 running)")
        browser.close()
    for i in ids:
        s.http("POST", f"/admin/invocations/{i}/cancel")
