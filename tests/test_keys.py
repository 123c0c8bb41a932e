import re

import pytest

from reliq.store.keys import InvalidName, ServiceKeys, check_name, child_id, keyed_id, new_id, service_of


def test_every_key_of_a_service_shares_one_hash_tag() -> None:
    k = ServiceKeys("orders")
    inv = new_id("orders")
    keys = [k.stream, k.delayed, k.parked, k.lost, k.registry, k.consumer("w1"), *k.per_invocation(inv)]
    keys += [k.archive, k.audit, k.minutes]
    tags = {re.search(r"\{([^}]*)\}", key).group(1) for key in keys}  # type: ignore[union-attr]
    assert tags == {"orders"}
    assert all(key.startswith("reliq:{orders}:") for key in keys)


@pytest.mark.parametrize("bad", ["", "Orders", "a{b}", "a:b", "a*", "a b", "a.b", "x" * 64, "1abc", "a\x00"])
def test_bad_names_are_refused(bad: str) -> None:
    with pytest.raises(InvalidName):
        check_name("service", bad)


def test_ids_encode_their_service_and_keys_are_stable() -> None:
    assert service_of(new_id("orders")) == "orders"
    assert keyed_id("orders", "k") == keyed_id("orders", "k") != keyed_id("orders", "k2")
    assert keyed_id("orders", "k") != keyed_id("shipping", "k")
    parent = new_id("orders")
    assert child_id("shipping", parent, "#1") == child_id("shipping", parent, "#1")
    assert child_id("shipping", parent, "#1") != child_id("shipping", parent, "#2")
    assert service_of(child_id("shipping", parent, "x")) == "shipping"


@pytest.mark.parametrize(
    "bad", ["orders", "orders.", "orders.UPPER", "{x}.abcdefghijklmnopqrstuvwxyz", "a.b.c"]
)
def test_malformed_ids_are_refused(bad: str) -> None:
    with pytest.raises(InvalidName):
        service_of(bad)
