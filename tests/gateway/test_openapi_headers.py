"""The OpenAPI document names every header /send and /call read: Idempotency-Key, Reply-To,
Callback-URL, Priority and the debounce headers (Prefer on /call), on the generic and the per-handler paths;
and every header it names is one the gateway acts on (a bad value of each is refused)."""

from __future__ import annotations

import msgspec

from reliq import App, Context, Service

from ..conftest import Names, running
from .conftest import gateway
from .test_ingress import shop

ORDER = {"order_id": "o", "amount_cents": 1}
HEADERS = {
    "Idempotency-Key",
    "Reply-To",
    "Callback-URL",
    "Debounce",
    "Debounce-Key",
    "Debounce-Mode",
    "Priority",
}
BAD = {  # a value of each header (with what the gateway needs beside it) that it refuses
    "Idempotency-Key": {"idempotency-key": "a\tb"},
    "Reply-To": {"reply-to": "billing"},
    "Callback-URL": {"callback-url": "ftp://x"},
    "Debounce": {"debounce": "soon", "debounce-key": "k"},
    "Debounce-Key": {"debounce": "2s", "debounce-key": ""},
    "Debounce-Mode": {"debounce": "2s", "debounce-key": "k", "debounce-mode": "sometimes"},
    "Priority": {"priority": "urgent"},
    "Prefer": {"prefer": "wait=abc"},
}


async def test_send_and_call_document_their_headers_and_each_one_is_honoured(url: str, names: Names) -> None:
    svc = shop(names())
    async with running(svc, url), gateway(url, svc) as http:
        doc = (await http.get("/openapi.json")).json()
        for verb in ("send", "call"):
            for path in (f"/{verb}/{{service}}/{{handler}}", f"/{verb}/{svc.name}/place"):
                params = doc["paths"][path]["post"]["parameters"]
                headers = {p["name"] for p in params if p["in"] == "header"}
                assert headers == HEADERS | ({"Prefer"} if verb == "call" else set()), (path, headers)
                assert all(p.get("description") for p in params if p["name"] in HEADERS - {"Idempotency-Key"})
                for name in headers:
                    r = await http.post(f"/{verb}/{svc.name}/place", json=ORDER, headers=BAD[name])
                    assert r.status_code == 400, (verb, name, r.text)
                    assert r.headers["content-type"] == "application/problem+json"
        callback = next(p for p in params if p["name"] == "Callback-URL")
        assert "RELIQ_CALLBACK_HOSTS" in callback["description"] and "422" in callback["description"]


class Order(msgspec.Struct):
    order_id: str


class OtherOrder(msgspec.Struct):  # named Order too, as if from another service's module
    sku: str
    qty: int


OtherOrder.__name__ = OtherOrder.__qualname__ = "Order"


async def test_two_services_input_types_of_one_name_keep_their_own_schemas(url: str, names: Names) -> None:
    """``Order`` of one service and ``Order`` of another (different fields) are two components;
    each handler's request body points at its own."""
    one, two = Service(names()), Service(names())

    @one.handler
    async def take(ctx: Context, req: Order) -> None: ...

    @two.handler
    async def take2(ctx: Context, req: OtherOrder) -> None: ...

    async with running(App([one, two]), url), gateway(url) as http:
        doc = (await http.get("/openapi.json")).json()
    schemas = doc["components"]["schemas"]
    fields = {}
    for service, handler in ((one.name, "take"), (two.name, "take2")):
        body = doc["paths"][f"/send/{service}/{handler}"]["post"]["requestBody"]["content"][
            "application/json"
        ]
        fields[service] = set(schemas[body["schema"]["$ref"].rsplit("/", 1)[1]]["properties"])
    assert fields == {one.name: {"order_id"}, two.name: {"sku", "qty"}}
