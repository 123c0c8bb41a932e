"""The gateway never claims a durability level the server cannot give; Redis trouble is a 503
"not confirmed", never a 2xx or a 500; bearer tokens guard everything but the probes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from reliq import Context, Service
from reliq.devserver.embedded import EmbeddedValkey, free_port

from ..conftest import Names, wait_until
from .conftest import gateway
from .test_ingress import nothing_placed


def noop_service(name: str) -> Service:
    svc = Service(name)

    @svc.handler
    async def noop(ctx: Context) -> None: ...

    return svc


async def test_fsync_is_refused_when_the_server_does_not_fsync_every_write(tmp_path: Path) -> None:
    svc = noop_service("dur")
    with EmbeddedValkey(data_dir=tmp_path, appendfsync="everysec") as server:
        async with gateway(server.url, svc, durability="fsync") as http:
            r = await http.post("/send/dur/noop", json=None)
            assert r.status_code == 503 and "everysec" in r.json()["detail"]
            assert (await http.get("/readyz")).status_code == 503
        async with gateway(server.url, svc, durability="none") as http:
            r = await http.post("/send/dur/noop", json=None)
            assert r.status_code == 202 and r.json()["durability"] == "none"
            assert r.headers["reliq-durability"] == "none"


async def test_replicas_mode_waits_for_the_replica_and_503s_without_one(tmp_path: Path) -> None:
    svc = noop_service("rep")
    with EmbeddedValkey(data_dir=tmp_path / "primary") as primary:
        async with gateway(primary.url, svc, durability="replicas:1", wait_timeout_ms=200) as http:
            r = await http.post("/send/rep/noop", json=None, headers={"Idempotency-Key": "k1"})
            assert r.status_code == 503 and "retry with the same Idempotency-Key" in r.json()["detail"]
            window = {"debounce": "30s", "debounce-key": "d"}  # a debounced send waits for the replica too
            r = await http.post("/send/rep/noop", json=None, headers=window)
            assert r.status_code == 503 and "send again" in r.json()["detail"]
            replica = EmbeddedValkey(
                data_dir=tmp_path / "replica", extra={"replicaof": f"127.0.0.1 {primary.port}"}
            ).start()
            try:

                async def confirmed() -> httpx.Response | None:  # once the replica has synced
                    r = await http.post("/send/rep/noop", json=None, headers={"Idempotency-Key": "k1"})
                    assert r.status_code in (202, 503), r.text
                    return r if r.status_code == 202 else None

                ok = await wait_until(confirmed, timeout=30, what="the send confirmed by the replica")
                assert ok.json()["durability"] == "replicas:1"
                # the retry converged on the invocation the unconfirmed attempt had placed
                assert ok.json()["status"] == "previously_accepted"
                first, second = [(await http.post("/send/rep/noop", json=None, headers=window)) for _ in "ab"]
                assert first.status_code == second.status_code == 202, (first.text, second.text)
                assert first.json()["durability"] == "replicas:1" and second.json()["status"] == "debounced"
                assert first.json()["id"] == second.json()["id"]  # the window the unconfirmed send opened
            finally:
                replica.stop()


async def test_redis_unreachable_is_503_problem_never_2xx_or_500() -> None:
    svc = noop_service("down")
    async with gateway(f"redis://127.0.0.1:{free_port()}/0", svc, durability="none") as http:
        r = await http.post("/send/down/noop", json=None)
        assert r.status_code == 503
        assert r.headers["content-type"] == "application/problem+json" and r.headers["retry-after"]
        assert "Traceback" not in r.text
        assert (await http.get("/readyz")).status_code == 503
        assert (await http.get("/healthz")).status_code == 200


async def test_tokens_guard_everything_but_the_probes(url: str, names: Names) -> None:
    svc = noop_service(names())
    async with gateway(url, svc, tokens=("s3cret",)) as http:
        r = await http.post(f"/send/{svc.name}/noop", json=None)
        assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
        wrong = await http.post(f"/send/{svc.name}/noop", json=None, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        assert (await http.get("/services")).status_code == 401
        assert (await http.get("/healthz")).status_code == 200
        ok = await http.post(f"/send/{svc.name}/noop", json=None, headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 202
        await http.post(f"/invocations/{ok.json()['id']}/cancel", headers={"Authorization": "Bearer s3cret"})
        # the dashboard shell holds no data and is open; its data (/admin) is not
        page = await http.get("/dashboard")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "default-src 'self'" in page.headers["content-security-policy"]
        assert page.headers["x-frame-options"] == "DENY"
        for name in ("dashboard.js", "views.js", "invocation.js", "start.js", "dashboard.css"):
            assert (await http.get(f"/dashboard/{name}")).status_code == 200
        assert (await http.get("/admin/services")).status_code == 401
        assert (await http.get("/dashboard/other")).status_code == 401  # only the shell's files are open


async def test_metrics_count_requests_and_report_backlog(url: str, names: Names) -> None:
    svc = noop_service(names())
    async with gateway(url, svc) as http:
        sent = await http.post(f"/send/{svc.name}/noop", json=None)
        text = (await http.get("/metrics")).text
        assert 'reliq_gateway_requests_total{route="/send",status="202"} 1.0' in text
        assert f'reliq_service_backlog{{service="{svc.name}"}} 1.0' in text
        assert 'reliq_gateway_durability{level="fsync"} 1.0' in text
        assert "reliq_gateway_register_seconds_bucket" in text
        await http.post(f"/invocations/{sent.json()['id']}/cancel")


async def test_openapi_is_served(url: str, names: Names) -> None:
    async with gateway(url, noop_service(names())) as http:
        doc = (await http.get("/openapi.json")).json()
    assert "/send/{service}/{handler}" in doc["paths"] and "/invocations/{invocation_id}" in doc["paths"]


async def test_openapi_carries_each_handlers_input_schema(url: str, names: Names) -> None:
    from .test_ingress import shop

    svc = shop(names())
    async with gateway(url, svc) as http:
        doc = (await http.get("/openapi.json")).json()
        assert (await http.get("/docs")).status_code == 200
    op = doc["paths"][f"/send/{svc.name}/place"]["post"]
    ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert ref == "#/components/schemas/Order"
    assert set(doc["components"]["schemas"]["Order"]["required"]) == {"order_id", "amount_cents"}
    assert f"/call/{svc.name}/place" in doc["paths"]


async def test_admission_control_answers_429_over_the_backlog(url: str, names: Names) -> None:
    svc = noop_service(names())
    async with gateway(url, svc, max_backlog=2) as http:
        ids = [(await http.post(f"/send/{svc.name}/noop", json=None)).json()["id"] for _ in range(2)]

        async def refused() -> httpx.Response | None:  # once the 0.5 s backlog cache has expired
            r = await http.post(f"/send/{svc.name}/noop", json=None)
            if r.status_code == 202:  # still the cached backlog: placed, cancelled below
                ids.append(r.json()["id"])
                return None
            return r

        r = await wait_until(refused, timeout=10, what="429 over the backlog")
        assert r.status_code == 429 and r.headers["retry-after"] == "1"
        for i in ids:
            await http.post(f"/invocations/{i}/cancel")


async def test_a_body_that_does_not_arrive_in_time_is_408(url: str, names: Names) -> None:
    svc = noop_service(names())
    never = asyncio.Event()

    async def trickle() -> AsyncIterator[bytes]:  # half a body, then nothing: the gateway must not wait
        yield b"nu"
        await never.wait()
        yield b"ll"

    async with gateway(url, svc, body_timeout=0.2) as http:
        send = http.post(
            f"/send/{svc.name}/noop", content=trickle(), headers={"content-type": "application/json"}
        )
        r = await asyncio.wait_for(send, 10)
    assert r.status_code == 408
    assert await nothing_placed(url, svc.name)


def test_tokens_come_from_the_env_list_and_a_tokens_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gateway.settings import GatewaySettings

    path = tmp_path / "tokens"
    path.write_text("# operators\nfile-token-1\n\nfile-token-2  # ci\n")
    monkeypatch.setenv("RELIQ_API_TOKENS", "env-token")
    monkeypatch.setenv("RELIQ_API_TOKENS_FILE", str(path))
    monkeypatch.setenv("RELIQ_BODY_TIMEOUT", "2.5")
    s = GatewaySettings.from_env()
    assert s.tokens == ("env-token", "file-token-1", "file-token-2")
    assert s.body_timeout == 2.5


async def test_a_gateway_started_before_redis_recovers_without_a_readyz_probe(tmp_path: Path) -> None:
    svc = noop_service("late")
    port = free_port()
    async with gateway(f"redis://127.0.0.1:{port}/0", svc) as http:
        r = await http.post("/send/late/noop", json=None)
        assert r.status_code == 503  # not confirmed: nothing could be placed
        with EmbeddedValkey(port=port, data_dir=tmp_path):

            async def placed() -> bool:  # no /readyz call: the send path re-checks by itself
                return (await http.post("/send/late/noop", json=None)).status_code == 202

            await wait_until(placed, timeout=15, what="the gateway to verify the late server")
