"""A real local Valkey Cluster from the embedded binary (3 primaries, 1 replica each), and reliq's
scripts on it: every key of a service shares one hash tag, so every script is single-slot and
runs on the node that owns the service. Groundwork for partitioned services (Cluster issue)."""

from __future__ import annotations

import pytest
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.cluster import key_slot
from redis.exceptions import RedisClusterException

from reliq.codec import fingerprint
from reliq.devserver.cluster import EmbeddedCluster
from reliq.store.keys import GROUP, ServiceKeys, new_id
from reliq.store.scripts import Registration, Scripts

from ..conftest import Names


def test_the_cluster_is_formed_with_replicas(cluster: EmbeddedCluster) -> None:
    for node in cluster.nodes:
        info = cluster.info(node)
        assert info["cluster_state"] == "ok" and info["cluster_known_nodes"] == "6"
        assert info["cluster_slots_assigned"] == "16384"
    roles = [cluster.info(n)["cluster_size"] for n in cluster.nodes]
    assert roles == ["3"] * 6  # 3 primaries serve slots; the other 3 replicate them


async def test_reliq_scripts_run_single_slot_on_the_owning_node(
    cluster: EmbeddedCluster, names: Names
) -> None:
    rc = RedisCluster(startup_nodes=[ClusterNode(h, p) for h, p in cluster.startup_nodes])
    await rc.initialize()
    try:
        services = [ServiceKeys(names("c")) for _ in range(12)]
        owners = {rc.get_node_from_key(k.stream).name for k in services}
        assert len(owners) >= 2  # the services spread over the primaries
        for k in services:  # every key of a service is in the service's slot
            assert {key_slot(x.encode()) for x in (k.stream, k.delayed, k.parked, k.inv("x.y"))} == {
                key_slot(k.stream.encode())
            }
        scripts = Scripts(rc)  # type: ignore[arg-type]
        k = services[0]
        await rc.xgroup_create(k.stream, GROUP, id="0", mkstream=True)
        inv = new_id(k.service)
        item = Registration(id=inv, fp=fingerprint("h", b"1"), handler="h", payload=b"1")
        assert await scripts.register_many(k, [item]) == [("accepted", "pending")]
        assert await scripts.register_many(k, [item]) == [("previously_accepted", "pending")]
        entries = await rc.xreadgroup(GROUP, "c1", {k.stream: ">"}, count=10)
        eid = entries[0][1][0][0].decode()
        claimed = await scripts.claim(k, "c1", 30_000, [(eid, inv)])
        assert claimed[0].status == "run" and claimed[0].epoch == 1
        assert await scripts.complete(k, 60_000, [(inv, eid, 1, "succeeded", b"42")]) == ["ok"]
        assert (await rc.hget(k.inv(inv), "state")) == b"succeeded"
        assert await rc.xlen(k.stream) == 0
        with pytest.raises(RedisClusterException, match="same key slot"):  # why every key shares the tag
            await rc.eval("return redis.call('MGET', KEYS[1], KEYS[2])", 2, k.stream, "plain-key")
        await rc.delete(k.inv(inv), k.stream, k.minutes)
    finally:
        await rc.aclose()


def test_a_node_port_leaves_room_for_its_bus(cluster: EmbeddedCluster) -> None:
    assert all(p + 10000 < 65536 for _, p in cluster.startup_nodes)
