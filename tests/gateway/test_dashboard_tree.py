"""The dashboard's view of a durable function tree in a real browser (Debian's chromium via
Playwright, against a real `reliq gateway` and `reliq worker`): the overview counts the suspended
invocations, the suspended list says what each waits for, the invocation page's live tree expands
level by level, and the operator resolves the leaf's promise from its page; the whole tree then
finishes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ..conftest import Names
from .test_dashboard_browser import ARGS, CHROMIUM, System, _need_browser, poll


@pytest.fixture
def system(url: str, names: Names, tmp_path: Path) -> Iterator[System]:
    _need_browser()
    s = System(url, names("dtree"), tmp_path)
    try:
        yield s
    finally:
        s.close()


def test_operator_follows_the_tree_and_resolves_the_promise(system: System) -> None:
    from playwright.sync_api import expect, sync_playwright

    s = system
    s.spawn("gateway", "gateway", "--port", str(s.port), "--durability", "fsync")
    s.spawn("worker", "worker", "tests.gateway.dash_tree_app:app", "--heartbeat-interval", "0.3")
    poll("gateway ready", lambda: s.http("GET", "/readyz"))
    poll("handlers registered", lambda: s.service in s.http("GET", "/services")["services"])
    root = s.http("POST", f"/send/{s.service}/root", "o-7")["id"]

    def all_suspended() -> bool:
        page = s.http("GET", f"/admin/services/{s.service}/suspended")
        return page["total"] == 3 and all(i["state"] == "suspended" for i in page["items"])

    poll("root, mid and leaf suspended", all_suspended)
    mid = s.http("GET", f"/admin/invocations/{root}/tree?depth=2")["children"][0]
    leaf = mid["children"][0]["id"]

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(f"{s.base}/dashboard")
        card = page.locator(f'section.card[data-service="{s.service}"]')
        suspended = card.get_by_role("link", name="suspended")
        expect(suspended).to_contain_text("3")
        suspended.click()
        expect(page.locator(f'tr[data-invocation="{leaf}"]')).to_contain_text("promise approval")
        expect(page.locator(f'tr[data-invocation="{root}"] .wait')).to_contain_text(mid["id"])
        page.goto(f"{s.base}/dashboard#/s/{s.service}/suspended?limit=2")  # paged by next_cursor
        rows = page.locator("#data tr[data-invocation]")
        expect(rows).to_have_count(2)
        page.locator("#next").click()
        expect(rows).to_have_count(1)
        page.locator("#first").click()
        expect(rows).to_have_count(2)
        page.goto(f"{s.base}/dashboard#/s/{s.service}/suspended")
        expect(rows).to_have_count(3)

        page.locator(f'tr[data-invocation="{root}"]').get_by_role("link", name=root).click()
        tree = page.locator("#live-tree")
        expect(tree.locator(f'li[data-node="{mid["id"]}"]')).to_contain_text("suspended")
        expect(tree.locator(f'li[data-node="{leaf}"]')).to_have_count(0)  # not fetched until expanded
        tree.locator(f'button[data-toggle="{mid["id"]}"]').click()
        leaf_node = tree.locator(f'li[data-node="{leaf}"]')
        expect(leaf_node).to_contain_text("promise approval")
        drawn = tree.get_attribute("data-drawn")
        expect(tree).not_to_have_attribute("data-drawn", drawn or "", timeout=10_000)  # the next refresh
        assert leaf_node.count() == 1  # ...kept the node expanded
        page.screenshot(path=str(s.tmp / "tree.png"), full_page=True)

        leaf_node.get_by_role("link", name=leaf).click()
        expect(page.locator("#promise-box")).to_be_visible()
        page.locator("#promise-value").fill('"the operator"')
        page.locator("#promise-form").get_by_role("button", name="resolve").click()
        expect(page.locator("#flash")).to_contain_text("resumed")
        expect(page.locator("#promise-value")).to_have_value("null")  # not kept for the next promise
        expect(page.locator("h1")).to_contain_text("succeeded", timeout=15_000)
        expect(page.locator("#promise-box")).to_be_hidden()
        browser.close()
    poll("the root finished", lambda: s.http("GET", f"/invocations/{root}")["state"] == "succeeded")
    assert s.http("GET", f"/invocations/{root}/output") == "o-7 approved by the operator"
