"""The admin API's edges: scopes (a read-only token gets 403 on actions), CSRF (cross-site
browser requests refused), 405 on GET to an action, 404 for unknown ids and services, 400
problem+json for bad parameters, and no state change on any of them."""

from __future__ import annotations

import pytest

from gateway.tokens import parse_tokens
from reliq import Client

from ..conftest import Names
from ..gateway.conftest import gateway
from .conftest import ok

OPS = {"Authorization": "Bearer opsecret"}
VIEWER = {"Authorization": "Bearer vsecret"}
PLAIN = {"Authorization": "Bearer plain"}
TOKENS = ("ops:opsecret:operator", "viewer:vsecret:read", "plain")


def test_token_entries_parse_with_scopes_and_plain_tokens_keep_full_access() -> None:
    parsed = parse_tokens(["plain", "ops:s1:operator", "viewer:s2:read", "old:s3"])
    assert [(t.name, t.secret, t.scope) for t in parsed] == [
        ("token1", b"plain", "operator"),
        ("ops", b"s1", "operator"),
        ("viewer", b"s2", "read"),
        ("old", b"s3", "operator"),
    ]
    for bad in ("a:b:admin", ":s:read", "a::read", "a:b:c:d"):
        with pytest.raises(ValueError):
            parse_tokens([bad])


async def test_a_read_only_token_sees_everything_and_changes_nothing(url: str, names: Names) -> None:
    svc = names()
    async with Client(url) as c, gateway(url, tokens=TOKENS) as http:
        acc = await c.send(svc, "job", 1)
        await c.redis.sadd("reliq:services", svc)
        assert (await http.get("/admin/services")).status_code == 401
        assert (
            ok(await http.get(f"/admin/invocations/{acc.id}", headers=VIEWER))["invocation"]["id"] == acc.id
        )
        ok(await http.get(f"/admin/services/{svc}/pending", headers=VIEWER))
        ok(await http.get("/admin/audit", headers=VIEWER))
        for path in (f"/admin/invocations/{acc.id}/cancel", f"/admin/services/{svc}/parked/redrive"):
            r = await http.post(path, headers=VIEWER)
            assert r.status_code == 403 and r.headers["content-type"] == "application/problem+json"
            assert r.json()["detail"] == "the token's scope is read"
        assert (await http.post(f"/send/{svc}/job", headers=VIEWER, json=2)).status_code == 403
        assert await c.state(acc.id) == "pending"

        done = ok(await http.post(f"/admin/invocations/{acc.id}/cancel", headers=OPS))
        assert done["status"] == "cancelled"
        assert (
            ok(await http.post(f"/admin/invocations/{acc.id}/cancel", headers=PLAIN))["status"] == "terminal"
        )
        log = ok(await http.get("/admin/audit", params={"service": svc}, headers=VIEWER))["items"]
        assert [(e["who"], e["result"]) for e in log] == [("token3", "terminal"), ("ops", "cancelled")]
        await c.redis.srem("reliq:services", svc)


async def test_wrong_methods_unknown_ids_bad_params_and_cross_site_requests(url: str, names: Names) -> None:
    svc = names()
    async with Client(url) as c, gateway(url) as http:
        acc = await c.send(svc, "job", 1)
        await c.redis.sadd("reliq:services", svc)
        try:
            for action in ("redrive", "discard", "release", "retry-now", "cancel"):
                r = await http.get(f"/admin/invocations/{acc.id}/{action}")
                assert r.status_code == 405 and r.headers["content-type"] == "application/problem+json"
                missing = await http.post(f"/admin/invocations/{svc}.{'a' * 26}/{action}")
                assert (
                    missing.status_code == 404 and missing.json()["detail"] == "unknown or expired invocation"
                )
            assert (await http.get(f"/admin/services/{svc}/parked/redrive")).status_code == 405
            for bad in (
                f"/admin/invocations/{svc}.{'b' * 26}",
                "/admin/invocations/nonsense",
                "/admin/services/x{y}",
            ):
                assert (await http.get(bad)).status_code == 404
            assert (await http.get("/admin/services/nosuchservice/pending")).status_code == 404
            for params in ({"cursor": "abc"}, {"min_idle_ms": "-1"}, {"limit": "many"}):
                r = await http.get(f"/admin/services/{svc}/pending", params=params)
                assert r.status_code == 400 and r.headers["content-type"] == "application/problem+json"
            assert (await http.get("/admin/audit", params={"cursor": "x-y"})).status_code == 400
            base = f"/admin/services/{svc}"
            lists = [f"{base}/{v}" for v in ("pending", "parked", "suspended", "waiting")] + ["/admin/audit"]
            for path in [*lists, f"{base}/parked/redrive"]:  # a sign alone: a form error, no Python text
                r = await (http.post if path.endswith("redrive") else http.get)(path, params={"limit": "-"})
                assert r.status_code == 400 and r.headers["content-type"] == "application/problem+json"
                assert r.json()["errors"] and "int()" not in r.text, (path, r.text)
            token = "c" * 26
            for path, cursor in (
                (f"{base}/pending", "0-1@99"),  # a source (partition x level) the service lacks
                (f"{base}/suspended", f"1@{svc}.9.{token}"),  # a partition the service lacks
                (f"{base}/parked", f"1@{svc}.9.{token}"),
                (f"{base}/parked", f"1@other.{token}"),  # another service's id
            ):
                r = await http.get(path, params={"cursor": cursor})
                assert r.status_code == 400 and "malformed cursor" in r.json()["detail"], cursor
                assert r.headers["content-type"] == "application/problem+json"
            empty = {"cursor": "", "consumer": "", "min_idle_ms": "", "limit": ""}  # a form's empty fields
            assert ok(await http.get(f"/admin/services/{svc}/pending", params=empty))["items"] == []
            page = ok(await http.get(f"/admin/services/{svc}/parked", params={"limit": 100000, "cursor": 0}))
            assert page["items"] == [] and page["next_cursor"] is None

            for headers in ({"Sec-Fetch-Site": "cross-site"}, {"Origin": "https://evil.example"}):
                r = await http.post(f"/admin/invocations/{acc.id}/cancel", headers=headers)
                assert r.status_code == 403 and r.json()["detail"] == "cross-site request refused"
            assert await c.state(acc.id) == "pending"  # nothing above changed anything
            same = {"Sec-Fetch-Site": "same-origin", "Origin": "http://127.0.0.1"}
            assert ok(await http.post(f"/admin/invocations/{acc.id}/cancel", headers=same))["changed"] is True
        finally:
            await c.redis.srem("reliq:services", svc)
