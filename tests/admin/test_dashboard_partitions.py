"""The dashboard of a partitioned service in a real browser (Debian's chromium via Playwright,
against a real `reliq gateway`): the service card shows the layout and one row per partition with
who holds its entries (a dead consumer holding work in two partitions is flagged in both); a
partition's link opens the pending list filtered on it; rows say their partition; a release
acts on the right partition and the audit log says which."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from reliq import Client

from ..conftest import Names
from ..gateway.test_dashboard_browser import ARGS, CHROMIUM, System, _need_browser, poll
from .partitioned import stuck, unstick


@pytest.fixture
def system(url: str, names: Names, tmp_path: Path) -> Iterator[System]:
    _need_browser()
    s = System(url, names("dashp"), tmp_path)
    try:
        yield s
    finally:
        s.close()


async def _setup(url: str, name: str) -> list[str]:
    async with Client(url) as c:
        return await stuck(c, name)


async def _teardown(url: str, name: str, ids: list[str]) -> None:
    async with Client(url) as c:
        await unstick(c, name, ids)


def test_the_dashboard_breaks_a_service_down_by_partition(system: System) -> None:
    from playwright.sync_api import expect, sync_playwright

    s = system
    ids = asyncio.run(_setup(s.url, s.service))
    try:
        s.spawn("gateway", "gateway", "--port", str(s.port))
        poll("gateway ready", lambda: s.http("GET", "/readyz"))
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.on("dialog", lambda d: d.accept())
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))  # a script error in the page
            page.goto(f"{s.base}/dashboard")
            card = page.locator(f'section.card[data-service="{s.service}"]')
            expect(card.locator(".badge.layout")).to_have_text("3 partitions")
            expect(card).to_contain_text("1 dead consumer(s) hold work")
            for p, holder in ((0, "live"), (1, "ghost"), (2, "ghost")):
                row = card.locator(f'div.parts tr[data-partition="{p}"]')
                expect(row).to_contain_text(holder)
            expect(card.locator('div.parts tr[data-partition="1"] .badge.dead')).to_be_visible()
            expect(card.locator('div.parts tr[data-partition="0"] .badge.dead')).to_have_count(0)
            expect(card).to_contain_text("in p1, p2")  # the dead consumer's entries, by partition

            card.locator('div.parts tr[data-partition="1"]').get_by_role("link", name="p1").click()
            expect(page.locator("h1")).to_contain_text("partition 1")
            rows = page.locator("#data tbody tr")
            expect(rows).to_have_count(1)
            expect(page.locator(f'tr[data-invocation="{ids[1]}"][data-partition="1"]')).to_contain_text(
                "ghost"
            )

            page.goto(f"{s.base}/dashboard#/s/{s.service}/pending")
            for p, i in enumerate(ids):
                expect(page.locator(f'tr[data-invocation="{i}"]')).to_have_attribute("data-partition", str(p))
            page.locator(f'tr[data-invocation="{ids[2]}"]').get_by_role("button", name="release").click()
            expect(page.locator("#flash")).to_contain_text("released")

            page.goto(f"{s.base}/dashboard#/i/{ids[2]}")
            expect(page.locator(".facts")).to_contain_text("partitionp2")
            page.goto(f"{s.base}/dashboard#/audit")
            expect(page.locator('#data tr[data-partition="2"]')).to_contain_text("release")
            assert not errors, errors
            browser.close()
    finally:
        asyncio.run(_teardown(s.url, s.service, ids))
