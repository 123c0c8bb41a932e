"""The edge (gateway.edge) under the attacks of issue 12: cross-site browser requests (a page on
another origin doing ``fetch(..., {mode: "no-cors"})`` or posting a ``<form enctype="text/plain">``),
DNS rebinding (a foreign Host), and non-JSON bodies. Each refused request is problem+json and
changes nothing: no key appears, no stream entry, no state changes."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from gateway.edge import Edge, Hosts, allowed_hosts, split_host
from gateway.settings import GatewaySettings
from reliq import Client, Context, Service

from ..conftest import Names, sync_client
from .conftest import gateway

EVIL = {"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"}
FORM = {**EVIL, "Content-Type": "text/plain"}  # what a <form enctype="text/plain"> and no-cors send
REBIND = {"Host": "rebind.evil.example:8000", "Origin": "http://rebind.evil.example:8000"}
OPS = {"Authorization": "Bearer opsecret"}


def svc_of(name: str) -> Service:
    svc = Service(name)

    @svc.handler
    async def job(ctx: Context, x: str) -> str:
        return x

    @svc.handler
    async def tick(ctx: Context) -> None:
        return None

    return svc


def keys_of(url: str, service: str) -> dict[bytes, Any]:
    """Every key of the service, with its type and length: what a refused request must not change."""
    r = sync_client(url)
    try:
        found = {}
        for pattern in (f"reliq:{{{service}}}:*", f"reliq:{{{service}:*}}:*"):
            for key in r.scan_iter(match=pattern, count=1000):
                kind = r.type(key)
                size = r.xlen(key) if kind == b"stream" else r.hlen(key) if kind == b"hash" else None
                found[key] = (kind, size, r.hget(key, "state") if kind == b"hash" else None)
        return found
    finally:
        r.close()


async def _noop(scope: Any, receive: Any, send: Any) -> None:
    return None


def refused(r: httpx.Response, status: int) -> None:
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["status"] == status


async def test_cross_site_send_call_and_cancel_are_refused_and_change_nothing(url: str, names: Names) -> None:
    svc = svc_of(names())
    async with Client(url) as c, gateway(url, svc) as http:
        queued = await c.send(svc.name, "job", "a")
        before = keys_of(url, svc.name)
        # the curl: a text/plain form post from another site cancelling known work
        refused(await http.post(f"/invocations/{queued.id}/cancel", headers=FORM, content=b"a=b"), 403)
        for path in (f"/send/{svc.name}/job", f"/call/{svc.name}/job", f"/send/{svc.name}/tick"):
            refused(await http.post(path, headers=FORM, content=b'"x"'), 403)  # no-cors fetch / form
            refused(await http.post(path, headers=EVIL, json="x"), 403)  # even with a JSON type
        for headers in (
            {"Origin": "http://evil.example"},  # a browser without Sec-Fetch-Site
            {"Sec-Fetch-Site": "same-site"},  # a sibling subdomain or another local port
            {"Sec-Fetch-Site": "cross-site"},
            {"Origin": "null"},  # a sandboxed frame or a file:// page
            {"Origin": "http://127.0.0.1.evil.example", "Sec-Fetch-Site": "same-origin"},
        ):
            refused(await http.post(f"/send/{svc.name}/job", headers=headers, json="x"), 403)
            refused(await http.post(f"/invocations/{queued.id}/cancel", headers=headers), 403)
            refused(await http.post(f"/admin/invocations/{queued.id}/cancel", headers=headers), 403)
        assert keys_of(url, svc.name) == before and await c.state(queued.id) == "pending"

        # the gateway's own pages, curl and server-to-server callers (no Origin) still work
        same = {"Origin": "http://127.0.0.1", "Sec-Fetch-Site": "same-origin"}
        r = await http.post(f"/send/{svc.name}/job", headers=same, json="y")
        assert r.status_code == 202, r.text
        assert (await http.post(f"/invocations/{r.json()['id']}/cancel", headers=same)).status_code == 202
        assert (await http.post(f"/invocations/{queued.id}/cancel")).status_code == 202


async def test_json_routes_need_a_json_content_type(url: str, names: Names) -> None:
    svc = svc_of(names())
    async with gateway(url, svc) as http:
        before = keys_of(url, svc.name)
        for ctype in (
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data",
            "text/x+json",
        ):
            r = await http.post(f"/send/{svc.name}/job", headers={"Content-Type": ctype}, content=b'"x"')
            refused(r, 415)
        # no Content-Type at all, with a body: a no-cors fetch of a Blob without a type sends this
        refused(await http.post(f"/send/{svc.name}/job", content=b'"x"'), 415)
        refused(await http.post(f"/send/{svc.name}/tick", content=b"null"), 415)
        assert keys_of(url, svc.name) == before
        # a body-less POST to a handler without input needs no type; JSON types are accepted
        assert (await http.post(f"/send/{svc.name}/tick")).status_code == 202
        vendor = {"Content-Type": "application/vnd.api+json; charset=utf-8"}
        assert (await http.post(f"/send/{svc.name}/job", headers=vendor, content=b'"x"')).status_code == 202


async def test_dns_rebinding_gets_421_and_changes_nothing(url: str, names: Names) -> None:
    svc = svc_of(names())
    async with Client(url) as c, gateway(url, svc) as http:
        queued = await c.send(svc.name, "job", "a")
        await c.redis.sadd("reliq:services", svc.name)
        try:
            before = keys_of(url, svc.name)
            # the curl: Origin equal to the (attacker's) Host used to pass the admin check
            refused(await http.post(f"/admin/invocations/{queued.id}/cancel", headers=REBIND), 421)
            refused(await http.post(f"/send/{svc.name}/job", headers=REBIND, json="x"), 421)
            refused(await http.post(f"/invocations/{queued.id}/cancel", headers=REBIND), 421)
            for path in (f"/invocations/{queued.id}", "/admin/services", "/services", "/dashboard"):
                refused(await http.get(path, headers={"Host": "rebind.evil.example"}), 421)
            for host in ("127.0.0.1.evil.example", "localhost:x", "[::1", ""):
                refused(await http.get("/services", headers={"Host": host}), 421)
            assert keys_of(url, svc.name) == before and await c.state(queued.id) == "pending"
            # the loopback names, with any port, are served; probes answer on any Host
            for host in ("localhost:8000", "127.0.0.1:9", "[::1]:8000", "LOCALHOST", "localhost."):
                assert (await http.get("/services", headers={"Host": host})).status_code == 200, host
            assert (await http.get("/healthz", headers={"Host": "10.0.0.7:8000"})).status_code == 200
        finally:
            await c.redis.srem("reliq:services", svc.name)
            await c.cancel(queued.id)


async def test_admin_origin_is_compared_with_the_allowed_hosts_never_the_request_host(
    url: str, names: Names
) -> None:
    svc = svc_of(names())
    async with Client(url) as c, gateway(url, svc, allowed_hosts=("*",)) as http:
        queued = await c.send(svc.name, "job", "a")
        same = {**REBIND, "Sec-Fetch-Site": "same-origin"}  # after rebinding the page IS same-origin
        refused(await http.post(f"/admin/invocations/{queued.id}/cancel", headers=same), 403)
        refused(await http.post(f"/send/{svc.name}/job", headers=same, json="x"), 403)
        assert await c.state(queued.id) == "pending"
        await c.cancel(queued.id)
    public = {"public_origins": ("https://reliq.example.com:443/",)}
    async with Client(url) as c, gateway(url, svc, **public) as http:
        queued = await c.send(svc.name, "job", "b")
        mine = {
            "Host": "reliq.example.com",
            "Origin": "https://reliq.example.com",
            "Sec-Fetch-Site": "same-origin",
        }
        assert (await http.post(f"/invocations/{queued.id}/cancel", headers=mine)).status_code == 202
        for evil in ("https://reliq.example.com.evil.example", "http://reliq.example.com"):
            other = {**mine, "Origin": evil}  # another name, or the public name on another scheme
            refused(await http.post(f"/send/{svc.name}/job", headers=other, json="x"), 403)


async def test_with_tokens_any_host_by_default_and_a_bearer_token_is_not_cross_site(
    url: str, names: Names
) -> None:
    svc = svc_of(names())
    tokens = ("ops:opsecret:operator",)
    async with Client(url) as c, gateway(url, svc, tokens=tokens) as http:
        before = keys_of(url, svc.name)
        refused(await http.post(f"/send/{svc.name}/job", headers=EVIL, json="x"), 403)
        bad = {**EVIL, "Authorization": "Bearer guess"}
        refused(await http.post(f"/send/{svc.name}/job", headers=bad, json="x"), 401)
        assert keys_of(url, svc.name) == before
        # a page holding a token was given it: a browser never attaches one by itself
        r = await http.post(f"/send/{svc.name}/job", headers={**EVIL, **OPS}, json="x")
        assert r.status_code == 202, r.text
        assert (await http.get("/services", headers={**OPS, "Host": "gw.internal:8000"})).status_code == 200
        await c.cancel(r.json()["id"])
    async with gateway(url, svc, tokens=tokens, allowed_hosts=("gw.internal",)) as http:
        refused(await http.get("/services", headers={**OPS, "Host": "other.internal"}), 421)
        assert (await http.get("/services", headers={**OPS, "Host": "gw.internal:8000"})).status_code == 200


async def test_head_answers_like_get_without_a_body(url: str, names: Names) -> None:
    svc = svc_of(names())
    async with Client(url) as c, gateway(url, svc, tokens=("viewer:vsecret:read",)) as http:
        acc = await c.send(svc.name, "job", "a")
        read = {"Authorization": "Bearer vsecret"}
        for path in (
            "/healthz",
            "/dashboard",
            "/services",
            f"/invocations/{acc.id}",
            "/openapi.json",
            "/docs",
        ):
            got, head = await http.get(path, headers=read), await http.head(path, headers=read)
            assert head.status_code == got.status_code == 200, (path, head.status_code)
            assert head.content == b"" and head.headers["content-type"] == got.headers["content-type"]
            assert head.headers["content-length"] == str(len(got.content))
        anon = await http.head("/services")  # HEAD is a read: it still needs the token
        assert anon.status_code == 401 and anon.headers["content-type"] == "application/problem+json"
        await c.cancel(acc.id)


async def test_docs_usable_with_tokens_bearer_scheme_and_handlers_only_for_token_holders(
    url: str, names: Names
) -> None:
    svc = svc_of(names())
    async with gateway(url, svc, tokens=("ops:opsecret:operator",)) as http:
        page = await http.get("/docs")
        assert page.status_code == 200 and "swagger-ui" in page.text
        anon = (await http.get("/openapi.json")).json()
        assert anon["components"]["securitySchemes"]["bearer"] == {
            "type": "http",
            "scheme": "bearer",
            "description": "a RELIQ_API_TOKENS token",
        }
        assert anon["security"] == [{"bearer": []}] and anon["paths"]["/healthz"]["get"]["security"] == []
        assert "/send/{service}/{handler}" in anon["paths"]
        assert not any(svc.name in p for p in anon["paths"])  # no service names without a token
        full = (await http.get("/openapi.json", headers=OPS)).json()
        assert f"/send/{svc.name}/job" in full["paths"] and full["security"] == [{"bearer": []}]
    async with gateway(url, svc) as http:
        open_doc = (await http.get("/openapi.json")).json()
        assert f"/send/{svc.name}/job" in open_doc["paths"] and "security" not in open_doc


def test_host_parsing_and_matching() -> None:
    assert split_host("LocalHost.:8000") == ("localhost", 8000)
    assert split_host("[::1]:80") == ("::1", 80)
    assert split_host("::1") == ("::1", None)
    for bad in ("", "[::1", "a:b", "a:8000:", "x:\u00b2", ":80"):
        assert split_host(bad) is None, bad
    hosts = Hosts(("api.example.com", "*.internal", "[::1]"))
    assert hosts.allows(b"api.example.com:443") and hosts.allows(b"a.b.internal") and hosts.allows(b"[::1]:1")
    assert not hosts.allows(b"internal") and not hosts.allows(b"evil.com") and not hosts.allows(None)
    with pytest.raises(ValueError):
        Hosts(("example.com:8000",))


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELIQ_ALLOWED_HOSTS", " gw.internal, *.example.com ,")
    monkeypatch.setenv("RELIQ_PUBLIC_ORIGIN", "https://reliq.example.org")
    s = GatewaySettings.from_env()
    assert s.allowed_hosts == ("gw.internal", "*.example.com")
    assert s.public_origins == ("https://reliq.example.org",)
    hosts = allowed_hosts(s)
    assert hosts.allows(b"reliq.example.org") and hosts.allows(b"a.example.com:1") and not hosts.allows(b"x")
    monkeypatch.setenv("RELIQ_ALLOWED_HOSTS", "")
    assert GatewaySettings.from_env().allowed_hosts is None  # empty: the default
    assert allowed_hosts(GatewaySettings(tokens=("t",))).any and not allowed_hosts(GatewaySettings()).any
    for bad in ("reliq.example.org", "ftp://x", "https://x/path", "https://"):
        with pytest.raises(ValueError):
            Edge(_noop, GatewaySettings(public_origins=(bad,)))


async def test_another_local_port_is_another_origin() -> None:
    """The server's own port (not the caller's Host) decides: a page on localhost:3000 is not us."""
    seen: list[str] = []

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["method"])

    edge = Edge(inner, GatewaySettings())

    async def status(origin: str, method: str = "POST") -> int:
        headers = [(b"host", b"localhost:8000"), (b"origin", origin.encode())]
        scope = {"type": "http", "method": method, "path": "/send/a/b", "headers": headers}
        sent: list[Any] = []

        async def send(message: Any) -> None:
            sent.append(message)

        async def receive() -> Any:
            return {"type": "http.request", "body": b""}

        await edge({**scope, "server": ("127.0.0.1", 8000)}, receive, send)
        return int(sent[0]["status"]) if sent else 0

    assert await status("http://localhost:3000") == 403
    assert await status("https://localhost") == 403  # port 443
    assert await status("http://localhost:8000") == 0 and await status("http://[::1]:8000") == 0
    assert await status("http://localhost:3000", "GET") == 0  # reads are not state changes
    assert seen == ["POST", "POST", "GET"]
