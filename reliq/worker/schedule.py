"""Schedule: move due invocations (delayed sends, retries after backoff) from the delayed set to
the stream. Any number of workers may run this: the promote script moves an id only once."""

from __future__ import annotations

import logging
import time

from reliq.errors import TRANSIENT
from reliq.store.keys import ServiceKeys
from reliq.worker.inflight import Runtime

log = logging.getLogger("reliq.worker.schedule")
MAX_SLEEP = 1.0


async def promote_once(rt: Runtime, k: ServiceKeys, offset_ms: int) -> float:
    """Promote what is due now (server time estimated from the local clock + offset; the script
    re-checks with the server's TIME). Returns how long to sleep before the next check."""
    redis = rt.client.redis
    now = int(time.time() * 1000) + offset_ms
    due = await redis.zrangebyscore(k.delayed, "-inf", now, start=0, num=200)
    if due:
        ids = [d.decode() for d in due]
        moved = await rt.client.scripts.promote(k, ids)
        if moved == 0:
            return 0.05  # our clock estimate ran ahead of the server's; the script refused
        if len(ids) == 200:
            return 0.0
    nxt = await redis.zrange(k.delayed, 0, 0, withscores=True)
    if not nxt:
        return MAX_SLEEP
    return max(0.0, min(MAX_SLEEP, (float(nxt[0][1]) - now) / 1000))


async def promote_loop(rt: Runtime, k: ServiceKeys) -> None:
    offset_ms: int | None = None  # server clock minus ours; read before the first round
    rounds = 0
    while not rt.stopping.is_set():
        rounds += 1
        try:
            if offset_ms is None or rounds % 60 == 0:  # follow clock adjustments on either side
                offset_ms = await rt.client.server_time_ms() - int(time.time() * 1000)
            pause = await promote_once(rt, k, offset_ms)
        except TRANSIENT as e:
            log.warning("promote on %s failed: %s", k.service, e)
            pause = MAX_SLEEP
        if pause > 0:
            await rt.sleep(pause)
