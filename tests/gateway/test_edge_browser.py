"""Issue 12's cross-site attacks in a real browser (Debian's chromium driven by Playwright) against
a real open `reliq gateway` on 127.0.0.1: a page on another site (http://evil.example, mapped to
127.0.0.1 by Chromium's resolver) sends ``fetch(..., {mode: "no-cors"})`` requests and posts a
``<form enctype="text/plain">``; a DNS-rebound name (rebind.evil.example on the gateway's port)
loads the dashboard. Every one is refused, and nothing is placed or cancelled."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from ..conftest import Names, sync_client
from .test_dashboard_browser import ARGS, CHROMIUM, System, _need_browser, poll

PAGE = """<!doctype html><title>cute cats</title>
<form id="f" method="POST" enctype="text/plain" action="{gw}/invocations/{inv}/cancel">
<input name="a" value="b"></form>
<script>
async function attack() {{
  await fetch("{gw}/send/{svc}/hang", {{method: "POST", mode: "no-cors", body: '"x"'}});
  await fetch("{gw}/send/{svc}/hang", {{method: "POST", mode: "no-cors",
    headers: {{"Content-Type": "text/plain"}}, body: '"y"'}});
  await fetch("{gw}/invocations/{inv}/cancel", {{method: "POST", mode: "no-cors"}});
  await fetch("{gw}/admin/invocations/{inv}/cancel", {{method: "POST", mode: "no-cors"}});
}}
</script>"""


@pytest.fixture
def evil_site() -> Iterator[tuple[int, dict[str, bytes]]]:
    """A web server for the attacker's page (its body is set by the test)."""
    pages: dict[str, bytes] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = pages.get("/", b"")
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], pages
    finally:
        server.shutdown()
        server.server_close()


def test_a_page_on_another_site_places_and_cancels_nothing(
    url: str, names: Names, tmp_path: Path, evil_site: tuple[int, dict[str, bytes]]
) -> None:
    _need_browser()
    from playwright.sync_api import sync_playwright

    s = System(url, names("edge"), tmp_path)
    try:
        s.spawn("gateway", "gateway", "--port", str(s.port), "--app", "tests.gateway.dash_app:app")
        poll("gateway ready", lambda: s.http("GET", "/readyz"))
        inv = s.http("POST", f"/send/{s.service}/hang", "o-1")["id"]  # work the page knows the id of
        evil_port, pages = evil_site
        gw = f"http://127.0.0.1:{s.port}"
        pages["/"] = PAGE.format(gw=gw, inv=inv, svc=s.service).encode()
        rules = "--host-resolver-rules=MAP evil.example 127.0.0.1, MAP rebind.evil.example 127.0.0.1"
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=[*ARGS, rules])
            page = browser.new_page()
            seen: list[tuple[str, int]] = []
            page.on("response", lambda r: seen.append((r.url.removeprefix(gw), r.status)))
            page.goto(f"http://evil.example:{evil_port}/")
            page.evaluate("attack()")
            with page.expect_navigation() as form:
                page.evaluate("document.getElementById('f').submit()")
            assert form.value is not None and form.value.status == 403
            assert "cross-site request refused" in page.content()
            # DNS rebinding: the attacker's name now points at the gateway
            rebound = page.goto(f"http://rebind.evil.example:{s.port}/dashboard")
            assert rebound is not None and rebound.status == 421
            browser.close()
        calls = [(u, st) for u, st in seen if not u.startswith("http://evil.example")]
        assert calls == [
            (f"/send/{s.service}/hang", 403),
            (f"/send/{s.service}/hang", 403),
            (f"/invocations/{inv}/cancel", 403),
            (f"/admin/invocations/{inv}/cancel", 403),
            (f"/invocations/{inv}/cancel", 403),
            (f"http://rebind.evil.example:{s.port}/dashboard", 421),
        ], seen
        assert s.http("GET", f"/invocations/{inv}")["state"] == "pending"
        r = sync_client(url)
        try:
            assert r.xlen(f"reliq:{{{s.service}}}:stream") == 1  # only the invocation placed above
        finally:
            r.close()
        assert s.http("POST", f"/invocations/{inv}/cancel")["status"] == "cancelled"
    finally:
        s.close()
