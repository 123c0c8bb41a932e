"""Review 1's dashboard findings in a real browser (Debian's chromium driven by Playwright) against
a real `reliq gateway` and `reliq worker`: a navigation during a refresh never shows the old page's
rows (also paused); the parked view pages by ``next_cursor``, forgets its selection when the query
changes and asks before a bulk action, once; times are the server's (a browser clock an hour
ahead changes nothing); a live owner's entry is released only on purpose; a read token sees no
action buttons. Some answers are replaced in the browser (``page.route``) where the page's
reaction is what is tested: an empty page with a next cursor, a refused release, a failed tree."""

from __future__ import annotations

import asyncio
import datetime
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reliq import Client
from reliq.store.ids import new_id

from ..conftest import Names
from .test_dashboard_browser import ARGS, CHROMIUM, System, _need_browser, poll


@pytest.fixture
def system(url: str, names: Names, tmp_path: Path) -> Iterator[System]:
    _need_browser()
    s = System(url, names("drev"), tmp_path)
    try:
        yield s
    finally:
        s.close()


def _start(s: System, worker: bool = True) -> None:
    s.spawn("gateway", "gateway", "--port", str(s.port), "--durability", "fsync")
    if worker:
        s.worker("w1")
    poll("gateway ready", lambda: s.http("GET", "/readyz"))
    if worker:
        poll("handlers registered", lambda: s.service in s.http("GET", "/services")["services"])


def _browser(pw: Any, s: System) -> tuple[Any, Any, list[str]]:
    """A page whose confirmation dialogs are accepted and listed."""
    browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.accept()))
    return browser, page, dialogs


def test_parked_view_pages_keeps_its_data_and_acts_once(system: System) -> None:
    from playwright.sync_api import expect, sync_playwright

    s = system
    _start(s)
    ids = [s.http("POST", f"/send/{s.service}/charge", f"o-{n}")["id"] for n in range(3)]
    for i in ids:
        poll(f"{i} parked", lambda i=i: s.http("GET", f"/invocations/{i}")["state"] == "failed")
    with sync_playwright() as pw:
        browser, page, dialogs = _browser(pw, s)
        missing: list[str] = []  # 404s: the page's requests, and the browser's /favicon.ico (on the console)
        page.on("response", lambda r: missing.append(r.url) if r.status == 404 else None)
        page.on("console", lambda m: missing.append(m.text) if m.type == "error" and "404" in m.text else 0)
        posts: list[str] = []
        page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
        parked = f"{s.base}/dashboard#/s/{s.service}/parked"
        rows = page.locator("#data tr[data-invocation]")

        page.goto(parked + "?limit=2")  # opened directly: the badge is filled all the same
        expect(page.locator("#durability")).to_have_text(re.compile(r"^durability [a-z]"))
        expect(rows).to_have_count(2)
        expect(page.locator(".pager")).to_contain_text("3 parked in total")
        page.locator("#next").click()
        expect(rows).to_have_count(1)
        page.locator("#first").click()
        expect(rows).to_have_count(2)

        # selected rows are rows on the screen: the archive (same path, other query) forgets them
        page.goto(parked)
        expect(rows).to_have_count(3)
        rows.first.locator("input[data-select]").check()
        assert page.evaluate("S.selected.size") == 1
        page.get_by_role("link", name="show archive").click()
        expect(page.locator("h1")).to_contain_text("Archive")
        assert page.evaluate("S.selected.size") == 0
        page.get_by_role("link", name="show parked").click()
        expect(rows).to_have_count(3)

        # "redrive selected": asked once, each selected invocation redriven once (a double click)
        for n in range(2):
            rows.nth(n).locator("input[data-select]").check()
        page.locator("#redrive-selected").dblclick()
        expect(page.locator("#flash")).to_contain_text("redrive")
        page.wait_for_timeout(500)
        assert dialogs == ["Redrive 2 selected invocation(s)?"]
        assert len([u for u in posts if u.endswith("/redrive")]) == 2, posts
        for i in ids:
            poll(f"{i} parked again", lambda i=i: s.http("GET", f"/invocations/{i}")["state"] == "failed")
        page.locator("#redrive-all").click()
        expect(page.locator("#flash")).to_contain_text(re.compile(r"redriven \d+, \d+ remaining"))

        # an empty page with a next cursor is not "nothing parked"
        empty = {"service": s.service, "archived": False, "total": 3, "items": [], "next_cursor": "9@x"}
        page.route("**/parked?*handler=other*", lambda route: route.fulfill(json=empty))
        page.goto(parked + "?handler=other")
        expect(page.locator("#data")).to_contain_text("none of handler other on this page: see the next page")
        expect(page.locator("#data")).not_to_contain_text("nothing parked")
        expect(page.locator(".pager")).to_contain_text("3 parked in total (every handler)")
        expect(page.locator("#next")).to_be_enabled()

        # finding 4: the parked answer arrives after the operator went to the archive and paused
        page.goto(parked)
        expect(rows).to_have_count(3)
        held: list[Any] = []

        def parked_only(u: str) -> bool:
            return "/parked?" in u and "archived" not in u

        def archive_only(u: str) -> bool:
            return "/parked?" in u and "archived=true" in u

        def wait_for(what: str, routes: list[Any]) -> None:
            for _ in range(100):
                if routes:
                    return
                page.wait_for_timeout(50)
            raise AssertionError(f"no request for {what}")

        # the next refresh's answer is held (a slow server)
        page.route(parked_only, lambda route: held.append(route))
        wait_for("the parked view's refresh", held)
        page.evaluate(f"location.hash = '#/s/{s.service}/parked?archived=true'")
        page.locator("#pause").click()
        archive: list[Any] = []
        page.route(archive_only, lambda route: archive.append(route))
        held[0].continue_()  # the parked answer arrives under the archive's heading: dropped
        wait_for("the archive, after the parked answer (paused: queued, not lost)", archive)
        expect(page.locator("h1")).to_contain_text("Archive")
        page.wait_for_timeout(300)
        expect(rows).to_have_count(0)
        archive[0].continue_()
        expect(page.locator("#data")).to_contain_text("nothing archived")
        page.wait_for_timeout(1000)  # paused: nothing would correct a wrong page later
        expect(rows).to_have_count(0)
        page.screenshot(path=str(s.tmp / "race.png"), full_page=True)
        assert not missing, missing  # no 404 (the favicon)
        browser.close()


def test_times_are_the_servers_and_a_live_owner_is_released_only_on_purpose(system: System) -> None:
    from playwright.sync_api import expect, sync_playwright

    s = system
    _start(s)
    hung = s.http("POST", f"/send/{s.service}/hang", "o-1")["id"]
    poll("hang running", lambda: s.http("GET", f"/invocations/{hung}")["state"] == "running")
    later = s.http("POST", f"/send/{s.service}/charge?delay=1h", "o-2")["id"]
    assert s.http("POST", f"/admin/invocations/{later}/cancel")["status"] == "cancelled"  # an audit line
    s.http("POST", f"/admin/services/{s.service}/schedules", {"name": "beat", "handler": "ping", "every": 1})
    base = f"/admin/services/{s.service}/schedules"
    poll("a tick", lambda: s.http("GET", base)[0]["last_tick"])

    async def many_children() -> None:  # the invocation page lists the first 200
        async with Client(s.url) as c:
            await c.redis.zadd(c.keys_of(hung).children(hung), {new_id(s.service): n for n in range(205)})

    asyncio.run(many_children())
    with sync_playwright() as pw:
        browser, page, dialogs = _browser(pw, s)
        ahead = datetime.datetime.now() + datetime.timedelta(hours=1)
        page.clock.set_system_time(ahead)  # the browser's clock: an hour ahead of the server's
        released: list[str] = []
        refused = {"id": hung, "action": "release", "status": "owner_alive", "changed": False}

        def release(route: Any) -> None:  # the server's refusal of a live owner (what it answers)
            released.append(route.request.url)
            route.fulfill(json=refused)

        page.route("**/release*", release)
        page.route("**/tree?depth=1", lambda route: route.fulfill(status=404, json={"detail": "gone"}))
        page.goto(f"{s.base}/dashboard#/i/{hung}")

        fact = lambda name: page.locator(".facts > div").filter(has=page.locator(f'span:text-is("{name}")'))  # noqa: E731
        expect(fact("lease")).to_contain_text("in ")
        expect(fact("created")).to_contain_text(" ago")
        expect(fact("created")).not_to_contain_text("1h")
        expect(page.locator("#timeline")).not_to_contain_text("1h")
        expect(page.locator("#children-cut")).to_have_text(re.compile(r"\(first 200\s+of 205 children\)"))
        expect(page.locator("#tree-error")).to_contain_text("404")
        expect(page.get_by_role("button", name="release entry now")).to_have_count(0)
        page.get_by_role("button", name="force release").click()
        expect(page.locator("#flash")).to_contain_text("refused, its owner is alive")
        assert len(dialogs) == 1 and "is alive" in dialogs[0] and "use cancel" in dialogs[0], dialogs
        assert released and released[0].endswith("/release?force=true"), released
        page.screenshot(path=str(s.tmp / "invocation.png"))  # the top: facts, actions, the refusal

        page.locator("#live-tree").screenshot(path=str(s.tmp / "tree-error.png"))
        page.goto(f"{s.base}/dashboard#/s/{s.service}/pending")
        row = page.locator(f'tr[data-invocation="{hung}"]')
        expect(row.get_by_role("button", name="force release")).to_be_visible()
        expect(row.get_by_role("button", name="release", exact=True)).to_have_count(0)
        page.screenshot(path=str(s.tmp / "pending.png"))

        page.goto(f"{s.base}/dashboard#/audit?service={s.service}")
        when = page.locator(f'#data tr:has(a[href="#/i/{later}"]) td').first
        expect(when).to_contain_text(" ago")
        expect(when).not_to_contain_text("1h")

        page.goto(f"{s.base}/dashboard#/s/{s.service}/schedules")
        beat = page.locator('tr[data-schedule="beat"]')
        # the next tick by the server's clock: ahead, or due by under a second and not placed yet
        # (a 1 s schedule on a loaded machine); by the browser's it would be about an hour past
        expect(beat.locator(".next")).to_have_text(re.compile(r"^\s*(in \S+|\d+ms ago)\s*$"))
        expect(beat.locator(".last")).not_to_contain_text("1h")
        page.screenshot(path=str(s.tmp / "schedules.png"))
        browser.close()


def test_a_read_token_sees_no_action_buttons(system: System, monkeypatch: pytest.MonkeyPatch) -> None:
    from playwright.sync_api import expect, sync_playwright

    s = system
    monkeypatch.setenv("RELIQ_API_TOKENS", "ops:opsecret:operator,viewer:vsecret:read")
    _start(s, worker=False)

    async def place() -> str:
        async with Client(s.url) as c:
            await c.redis.sadd("reliq:services", s.service)
            return (await c.send(s.service, "job", 1, delay=3600)).id

    inv = asyncio.run(place())
    try:
        with sync_playwright() as pw:
            for secret, shown in (("vsecret", False), ("opsecret", True)):
                browser, page, _ = _browser(pw, s)
                page.goto(f"{s.base}/dashboard#/i/{inv}")
                page.locator("#token").fill(secret)
                page.get_by_role("button", name="use token").click()
                expect(page.locator("h1")).to_contain_text(inv)
                cancel = page.get_by_role("button", name="cancel")
                expect(cancel).to_be_visible() if shown else expect(cancel).to_be_hidden()
                browser.close()
    finally:
        asyncio.run(_forget(s.url, s.service))


async def _forget(url: str, service: str) -> None:
    async with Client(url) as c:
        await c.redis.srem("reliq:services", service)
