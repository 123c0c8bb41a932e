"""The dashboard in a real browser (Debian's chromium driven by Playwright), against a real
`reliq gateway` and real `reliq worker` processes: a worker SIGKILLed mid-handler leaves its entry
pending with a dead owner; a handler that always fails ends parked; the operator finds both,
reads the timeline, redrives the parked one and sees it succeed.

Screenshots go to the test's tmp dir, and to ``$RELIQ_SCREENSHOTS`` when set (the README's come
from here: ``RELIQ_SCREENSHOTS=docs/img .venv/bin/pytest tests/gateway/test_dashboard_browser.py``)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reliq.devserver.embedded import free_port

from ..conftest import Names

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]


def _need_browser() -> None:
    missing = not os.path.exists(CHROMIUM)
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing = True
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"CI needs {CHROMIUM} (apt-get install -y chromium) and playwright (pip)")
        pytest.skip(f"no browser: install Debian's chromium ({CHROMIUM}) and playwright to run this test")


class System:
    """A gateway and workers as subprocesses; everything is killed at the end."""

    def __init__(self, url: str, service: str, tmp: Path) -> None:
        self.url, self.service, self.tmp = url, service, tmp
        self.marker = tmp / "card-ok"
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.procs: list[subprocess.Popen[bytes]] = []

    def spawn(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        env = {**os.environ, "RELIQ_DASH_SERVICE": self.service, "RELIQ_DASH_MARKER": str(self.marker)}
        log = open(self.tmp / f"{name}.log", "ab")  # noqa: SIM115
        cmd = [sys.executable, "-m", "reliq", "--redis-url", self.url, "--log-level", "WARNING", *args]
        p = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        self.procs.append(p)
        return p

    def worker(self, consumer: str) -> subprocess.Popen[bytes]:
        # a long visibility timeout: the dead worker's entry stays where the operator can see it
        opts = ["--visibility-timeout", "600", "--heartbeat-interval", "0.3", "--consumer", consumer]
        return self.spawn(consumer, "worker", "tests.gateway.dash_app:app", *opts)

    def http(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, timeout=5) as r:
            return json.loads(r.read() or b"null")

    def close(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            p.wait(10)


def poll(what: str, check: Any, timeout: float = 60.0) -> Any:  # a deadline: 4 xdist workers start browsers
    deadline = time.monotonic() + timeout
    while True:
        try:
            got = check()
        except OSError:
            got = None
        if got:
            return got
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)  # polling interval, bounded by the deadline above


@pytest.fixture
def system(url: str, names: Names, tmp_path: Path) -> Iterator[System]:
    _need_browser()
    s = System(url, names("dash"), tmp_path)
    try:
        yield s
    finally:
        s.close()


def test_operator_finds_dead_owner_and_parked_work_and_redrives_it(system: System, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    s = system
    s.spawn("gateway", "gateway", "--port", str(s.port), "--durability", "fsync")
    doomed = s.worker("doomed-worker")
    poll("gateway ready", lambda: s.http("GET", "/readyz"))
    poll("handlers registered", lambda: s.service in s.http("GET", "/services")["services"])
    hung = s.http("POST", f"/send/{s.service}/hang", "o-17")["id"]
    failed = s.http("POST", f"/send/{s.service}/charge", "o-42")["id"]
    poll("hang running", lambda: s.http("GET", f"/invocations/{hung}")["state"] == "running")
    poll("charge parked", lambda: s.http("GET", f"/invocations/{failed}")["state"] == "failed")
    doomed.send_signal(signal.SIGKILL)
    doomed.wait(10)

    def owner_dead() -> bool:
        svc = next(x for x in s.http("GET", "/admin/services")["services"] if x["service"] == s.service)
        return any(c["name"] == "doomed-worker" and not c["alive"] for c in svc["consumers"])

    poll("the killed worker's heartbeat to expire", owner_dead)
    shots = [tmp_path / "shots"]
    if os.environ.get("RELIQ_SCREENSHOTS"):
        shots.append(Path(os.environ["RELIQ_SCREENSHOTS"]))

    def shot(page: Any, name: str) -> None:
        page.screenshot(path=str(shots[0] / f"{name}.png"), full_page=True)
        for extra in shots[1:]:
            extra.mkdir(parents=True, exist_ok=True)
            shutil.copy(shots[0] / f"{name}.png", extra / f"{name}.png")

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.on("dialog", lambda d: d.accept())
        page.goto(f"{s.base}/dashboard")
        card = page.locator(f'section.card[data-service="{s.service}"]')
        expect(card).to_contain_text("dead consumer(s) hold work")
        expect(card.locator(".badge.dead")).to_be_visible()
        shot(page, "dashboard-overview")

        card.get_by_role("link", name="pending").first.click()
        row = page.locator(f'tr[data-invocation="{hung}"]')
        expect(row.locator(".badge.dead")).to_be_visible()
        expect(row).to_contain_text("doomed-worker")
        expect(row).to_contain_text("reserve")  # the step it journaled before it died
        shot(page, "dashboard-pending")

        row.get_by_role("link", name=hung).click()
        timeline = page.locator("#timeline")
        expect(timeline).to_contain_text("accepted")
        expect(timeline).to_contain_text("claimed by doomed-worker (epoch 1)")
        expect(timeline).to_contain_text('step "reserve" committed')
        shot(page, "dashboard-invocation")

        page.goto(f"{s.base}/dashboard#/s/{s.service}/parked")
        parked_row = page.locator(f'tr[data-invocation="{failed}"]')
        expect(parked_row).to_contain_text("attempts-exhausted")
        expect(parked_row).to_contain_text("card declined for o-42")
        shot(page, "dashboard-parked")

        s.marker.write_text("ok")  # the card works now; a fresh worker runs the redrive
        s.worker("rescue-worker")
        parked_row.get_by_role("button", name="redrive").click()
        expect(parked_row).to_have_count(0, timeout=15_000)
        page.goto(f"{s.base}/dashboard#/i/{failed}")
        expect(page.locator("h1")).to_contain_text("succeeded", timeout=15_000)
        expect(page.locator("#timeline")).to_contain_text("redriven")
        shot(page, "dashboard-redriven")

        page.goto(f"{s.base}/dashboard#/audit")
        expect(page.locator("table")).to_contain_text("redrive")
        browser.close()
    assert s.http("GET", f"/invocations/{failed}")["result"] == "charged o-42"


def test_a_rolling_deploy_shows_which_schemas_are_in_force(system: System) -> None:
    """Two live workers run two releases of one handler: the dashboard says both schemas are in
    force, which one is current and which consumers run each; the gateway (no --app) takes both."""
    from playwright.sync_api import expect, sync_playwright

    s = system
    s.spawn("gateway", "gateway", "--port", str(s.port), "--durability", "fsync")
    for consumer, release in (("old-release", "v1"), ("new-release", "v2")):
        opts = ["--heartbeat-interval", "0.3", "--consumer", consumer]
        s.spawn(consumer, "worker", f"tests.gateway.rolling_app:{release}", *opts)
        poll(f"{consumer} live", lambda c=consumer: _runs(s, c))
    poll("gateway ready", lambda: s.http("GET", "/readyz"))

    def both_in_force() -> Any:
        entry = s.http("GET", "/services")["services"].get(s.service, {}).get("take", {})
        return entry if len(entry.get("versions", [])) == 2 else None

    entry = poll("two schemas in force", both_in_force)
    assert [v["consumers"] for v in entry["versions"]] == [["new-release"], ["old-release"]]
    for body in (7, "x"):  # valid under one release each: both accepted
        assert s.http("POST", f"/send/{s.service}/take?delay=1h", body)["status"] == "accepted"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(f"{s.base}/dashboard")
        rolling = page.locator(
            f'section.card[data-service="{s.service}"] .handler.rolling[data-handler="take"]'
        )
        expect(rolling).to_contain_text("2 schemas in force")
        expect(rolling).to_contain_text(f"current {entry['versions'][0]['version']} (new-release)")
        expect(rolling).to_contain_text(f"also accepted: {entry['versions'][1]['version']} (old-release)")
        browser.close()


def _runs(s: System, consumer: str) -> bool:
    entry = s.http("GET", "/services")["services"].get(s.service, {}).get("take", {})
    return any(consumer in v["consumers"] for v in entry.get("versions", []))


def test_schedules_show_next_fire_last_tick_and_outcome_and_pause_resume_delete(system: System) -> None:
    """A schedule created through the admin API shows its next fire time, last tick, last outcome
    and state; pause, resume and delete from the page reach the store."""
    from playwright.sync_api import expect, sync_playwright

    s = system
    s.spawn("gateway", "gateway", "--port", str(s.port), "--durability", "fsync")
    s.spawn("ticker", "worker", "tests.gateway.dash_app:app", "--heartbeat-interval", "0.3")
    poll("gateway ready", lambda: s.http("GET", "/readyz"))
    poll("handlers registered", lambda: s.service in s.http("GET", "/services")["services"])
    base = f"/admin/services/{s.service}/schedules"
    s.http("POST", base, {"name": "beat", "handler": "ping", "every": 1})

    def listed() -> Any:
        [info] = s.http("GET", base)
        return info if info["last_state"] == "succeeded" else None

    poll("a tick that succeeded", listed)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.on("dialog", lambda d: d.accept())
        page.goto(f"{s.base}/dashboard")
        page.locator(f'section.card[data-service="{s.service}"]').get_by_role(
            "link", name="schedules"
        ).click()
        row = page.locator('tr[data-schedule="beat"]')
        expect(row.locator(".outcome")).to_contain_text("succeeded")
        # ahead, or due by under a second and not placed yet (a 1 s schedule on a loaded machine)
        expect(row.locator(".next")).to_have_text(re.compile(r"^\s*(in \S+|\d+ms ago)\s*$"))
        expect(row.locator(".last")).to_contain_text(" ago")
        expect(row.locator(".status")).to_contain_text("active")
        row.get_by_role("button", name="pause").click()
        expect(row.locator(".status")).to_contain_text("paused")
        expect(row.locator(".next")).to_have_text("—")
        assert s.http("GET", base)[0]["paused_since"] is not None
        row.get_by_role("button", name="resume").click()
        expect(row.locator(".status")).to_contain_text("active")
        assert s.http("GET", base)[0]["paused_since"] is None
        row.get_by_role("button", name="delete").click()
        expect(row).to_have_count(0)
        browser.close()
    assert s.http("GET", base) == []
