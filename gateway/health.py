"""GET /healthz, /readyz, /metrics and /services."""

from __future__ import annotations

import contextlib

import msgspec
from fastapi import APIRouter, Request
from starlette.responses import Response

from reliq.store.keys import GROUP

from .problems import documented
from .state import state_of

router = APIRouter()


@router.get("/healthz", summary="Liveness")
async def healthz() -> Response:
    return Response(b'{"status":"ok"}', media_type="application/json")


@router.get(
    "/readyz",
    summary="Readiness: Redis reachable and the configured durability verified",
    responses=documented(200, 503),
)
async def readyz(request: Request) -> Response:
    st = state_of(request)
    try:
        st.verify(await st.client.durability())
    except Exception as e:  # unreachable Redis: not ready, and say why without internals
        down = {"status": "unavailable", "detail": f"redis unreachable ({type(e).__name__})"}
        return Response(msgspec.json.encode(down), status_code=503, media_type="application/json")
    server = st.server
    doc: dict[str, object] = {
        "status": "ready" if not st.refusal else "refusing",
        "durability": st.durability_level,
        "detail": st.refusal,
        "server": server,
    }
    return Response(
        msgspec.json.encode(doc), status_code=200 if not st.refusal else 503, media_type="application/json"
    )


@router.get(
    "/services",
    summary="Registered services and handlers with their input JSON schemas",
    responses=documented(200, 401),
)
async def services(request: Request) -> Response:
    found = await state_of(request).catalog.services()
    doc = {s: {h: {"input_schema": i.input_schema} for h, i in hs.items()} for s, hs in found.items()}
    return Response(msgspec.json.encode({"services": doc}), media_type="application/json")


@router.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    st = state_of(request)
    redis = st.client.redis
    for service in await st.catalog.services():
        xlen = parked = delayed = pending = 0
        for k in await st.client.partition_keys(service):  # summed over the service's partitions
            async with redis.pipeline(transaction=False) as p:
                p.xlen(k.stream)
                p.zcard(k.parked)
                p.zcard(k.delayed)
                x, pk, d = await p.execute()
            xlen, parked, delayed = xlen + x, parked + pk, delayed + d
            with contextlib.suppress(Exception):  # no group yet
                pending += (await redis.xpending(k.stream, GROUP))["pending"]
        st.metrics.backlog.labels(service=service).set(xlen)
        st.metrics.pending.labels(service=service).set(pending)
        st.metrics.parked.labels(service=service).set(parked)
        st.metrics.delayed.labels(service=service).set(delayed)
    st.metrics.set_batches(st.placer.flushes, st.placer.placed)
    return Response(st.metrics.render(), media_type="text/plain; version=0.0.4")
