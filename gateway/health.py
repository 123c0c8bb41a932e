"""GET /healthz (liveness: the process answers) and /readyz (readiness: Redis answers and gives
the configured durability). Both are open without a token, for orchestrators; /readyz re-reads
the server's durability on every call, so it also lifts or sets the durability gate.

With ``RELIQ_CALLBACK_HOSTS`` set, /readyz also says how many live workers deliver callbacks and
warns when none does: the gateway still accepts ``Callback-URL`` (the deliveries are placed and
wait durably), but nothing is POSTed until such a worker runs. A note, not a refusal."""

from __future__ import annotations

import msgspec
from fastapi import APIRouter, Request
from starlette.responses import Response

from reliq.client import callbacks

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
    gate = st.gate
    try:
        gate.verify(await st.client.durability())
    except Exception as e:  # unreachable Redis: not ready, and say why without internals
        down = {"status": "unavailable", "detail": f"redis unreachable ({type(e).__name__})"}
        return Response(msgspec.json.encode(down), status_code=503, media_type="application/json")
    doc: dict[str, object] = {
        "status": "ready" if not gate.refusal else "refusing",
        "durability": st.durability_level,
        "detail": gate.refusal,
        "server": gate.server,
    }
    if st.settings.callback_hosts:
        live = await callbacks.deliverers(st.client)
        doc["callbacks"] = {
            "deliverers": len(live),
            "warning": None
            if live
            else "no live worker delivers callbacks: Callback-URL deliveries wait until a worker "
            "with RELIQ_CALLBACK_HOSTS set runs",
        }
    return Response(
        msgspec.json.encode(doc), status_code=200 if not gate.refusal else 503, media_type="application/json"
    )
