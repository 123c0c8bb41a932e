"""durability.py: the level reported matches what the server was configured to give."""

from pathlib import Path

import pytest

from reliq import Client
from reliq.devserver.embedded import EmbeddedValkey


@pytest.mark.parametrize(
    ("appendfsync", "extra", "level", "safe"),
    [
        ("always", {}, "fsync", True),
        ("everysec", {}, "process", True),
        ("always", {"appendonly": "no"}, "none", True),
        ("always", {"maxmemory-policy": "allkeys-lru"}, "fsync", False),
    ],
)
async def test_reported_level_matches_the_server_config(
    tmp_path: Path, appendfsync: str, extra: dict[str, str], level: str, safe: bool
) -> None:
    with EmbeddedValkey(data_dir=tmp_path, appendfsync=appendfsync, extra=extra) as server:
        async with Client(server.url) as c:
            d = await c.durability()
    assert d.level == level
    assert d.eviction_safe is safe
    assert bool(d.notes) is not (level == "fsync" and safe)


async def test_without_config_permission_info_is_used_and_says_so(tmp_path: Path) -> None:
    with EmbeddedValkey(data_dir=tmp_path) as server:
        async with Client(server.url) as admin:
            await admin.redis.acl_setuser(
                "app",
                enabled=True,
                passwords=["+pw"],
                keys=["*"],
                channels=["*"],
                commands=["+@all", "-config"],
            )
        async with Client(f"redis://app:pw@127.0.0.1:{server.port}/0") as c:
            d = await c.durability()
    assert d.level == "process" and d.appendfsync is None
    assert any("CONFIG" in n for n in d.notes)


async def test_the_embedded_server_survives_sigkill_without_losing_acked_invocations(tmp_path: Path) -> None:
    server = EmbeddedValkey(data_dir=tmp_path).start()
    try:
        async with Client(server.url) as c:
            ids = [(await c.send("durable", "h", {"n": i}, key=f"k{i}")).id for i in range(200)]
        server.kill()
        server.start()
        async with Client(server.url) as c:
            assert [await c.state(i) for i in ids] == ["pending"] * 200
            assert await c.redis.xlen("reliq:{durable}:stream") == 200
    finally:
        server.stop()
