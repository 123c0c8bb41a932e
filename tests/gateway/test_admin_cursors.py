"""A malformed admin cursor is a 400 ``malformed cursor`` on the merged-stream pages (the audit
log, the pending entries), never a 503 from Redis refusing the id nor an empty 200 page: a
number beyond u64, a trailing newline (``$`` matched before it), ``0-0`` (the exclusive range
before it is a Redis error)."""

from __future__ import annotations

import pytest

from ..conftest import Names, running
from .conftest import gateway
from .test_ingress import shop


@pytest.mark.parametrize(
    "cursor", ["99999999999999999999-0", "18446744073709551616-0", "1-18446744073709551616", "1-0\n", "0-0"]
)
async def test_a_cursor_beyond_the_entry_ids_is_400(url: str, names: Names, cursor: str) -> None:
    svc = shop(names())
    async with running(svc, url):
        pass
    async with gateway(url) as http:
        for path in ("/admin/audit", f"/admin/services/{svc.name}/pending"):
            r = await http.get(path, params={"cursor": cursor})
            assert r.status_code == 400, (path, r.text)
            assert "malformed cursor" in r.json()["detail"]
        for path in ("/admin/audit", f"/admin/services/{svc.name}/pending"):  # the largest u64 is a cursor
            r = await http.get(path, params={"cursor": "18446744073709551615-0", "service": svc.name})
            assert r.status_code == 200 and r.json()["items"] == [], (path, r.text)
