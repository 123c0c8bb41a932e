"""Schedules through the admin API and the CLI: create (idempotent; a different definition is a
409), list, pause, resume, delete; bad expressions, zones and bodies are 400 problem+json naming
the field, with nothing stored."""

from __future__ import annotations

import json

from reliq import Context, Service

from ..admin.test_cli import reliq
from ..conftest import Names, client
from .conftest import gateway


async def test_schedules_through_the_admin_api_and_the_cli(url: str, names: Names) -> None:
    svc = Service(names())

    @svc.handler
    async def report(ctx: Context) -> None: ...

    base = f"/admin/services/{svc.name}/schedules"
    async with client(url) as c, gateway(url, app=svc) as http:
        k = c.keys(svc.name)
        await c.redis.sadd("reliq:services", svc.name)
        for body, field in (
            ({"name": "n", "handler": "report", "cron": "99 * * * *"}, "cron"),
            ({"name": "n", "handler": "report", "cron": "* * * * *", "tz": "Mars/Base"}, "tz"),
            ({"name": "n", "handler": "report"}, "cron"),
            ({"name": "N!", "handler": "report", "every": 60}, "name"),
        ):
            r = await http.post(base, json=body)
            assert r.status_code == 400 and r.headers["content-type"] == "application/problem+json", r.text
            assert r.json()["field"] == field
        r = await http.post(base, json={"name": "n", "handler": "report", "every": 60, "extra": 1})
        assert r.status_code == 400 and "extra" in r.json()["detail"]
        assert not await c.redis.exists(k.schedules, k.ticks, k.cron)  # nothing stored

        new = {"name": "nightly", "handler": "report", "cron": "0 3 * * *", "tz": "Europe/Berlin"}
        assert (await http.post(base, json=new)).status_code == 201
        assert (await http.post(base, json=new)).json() == {"status": "unchanged"}
        assert (await http.post(base, json={**new, "cron": "0 4 * * *"})).status_code == 409
        [doc] = (await http.get(base)).json()
        assert doc["schedule"]["cron"] == "0 3 * * *" and doc["next_fire"] and doc["paused_since"] is None
        assert (await http.post(f"{base}/nightly/pause")).json() == {"status": "paused"}
        [doc] = (await http.get(base)).json()
        assert doc["paused_since"] and doc["next_fire"] is None

        code, out = await reliq(url, "schedules", svc.name)
        assert code == 0 and json.loads(out)[0]["paused_since"], out
        code, out = await reliq(url, "schedules", svc.name, "resume", "nightly")
        assert code == 0 and json.loads(out) == {"status": "resumed"}
        code, out = await reliq(url, "schedules", svc.name, "create", "x", "report", "--cron", "* * *")
        assert code == 2 and "cron" in out  # bad input
        code, out = await reliq(url, "schedules", svc.name, "create", "x", "report", "--every", "5")
        assert code == 0 and json.loads(out) == {"status": "created"}
        code, out = await reliq(url, "schedules", svc.name, "create", "x", "report", "--every", "6")
        assert code == 1 and "exists" in out and len(out.strip().splitlines()) == 1  # a refusal
        code, out = await reliq(url, "schedules", svc.name, "delete", "x")
        assert code == 0 and json.loads(out) == {"status": "deleted"}
        code, out = await reliq(url, "schedules", svc.name, "pause", "x")
        assert code == 1 and out.strip() == f"reliq schedules: no schedule 'x' in '{svc.name}'"

        assert (await http.delete(f"{base}/nightly")).json() == {"status": "deleted"}
        assert (await http.delete(f"{base}/nightly")).status_code == 404
        assert (await http.post(f"{base}/nightly/resume")).status_code == 404
        assert not await c.redis.exists(k.schedules, k.ticks, k.cron)
        await c.redis.srem("reliq:services", svc.name)
