import inspect
import re

import pytest

from reliq.store.keys import InvalidName, ServiceKeys, check_name, child_id, keyed_id, new_id, service_of

NOT_KEYS = {"service", "partition", "level", "at"}  # the attributes of ServiceKeys that are not key names
SERVICE_WIDE = {  # always {S}
    *("layout", "registry", "schemas", "consumer", "consumer_prefix", "cancel_channel"),
    *("schedules", "ticks", "cron", "settings"),
}


def every_key(k: ServiceKeys, invocation_id: str) -> dict[str, list[str]]:
    """Attribute name -> the key names it gives: every public attribute of ``ServiceKeys`` that
    is not in NOT_KEYS, the methods called with an id for each argument. None is listed by hand,
    so a key added to ServiceKeys is checked the day it is added."""
    out: dict[str, list[str]] = {}
    for name in dir(k):
        if name.startswith("_") or name in NOT_KEYS:
            continue
        value = getattr(k, name)
        if callable(value):
            value = value(*[invocation_id] * len(inspect.signature(value).parameters))
        out[name] = list(value) if isinstance(value, tuple) else [value]
    return out


def test_every_key_of_a_service_shares_one_hash_tag() -> None:
    inv = new_id("orders")
    keys = every_key(ServiceKeys("orders"), inv)
    assert {"stream", "layout", "inv", "consumer", "per_invocation", "minutes"} <= set(keys)
    for name, values in keys.items():
        for key in values:
            assert isinstance(key, str) and key.startswith("reliq:{orders}:"), (name, key)
            assert re.findall(r"\{([^}]*)\}", key) == ["orders"], (name, key)


def test_a_partition_s_keys_carry_its_tag_and_service_wide_keys_the_service_s() -> None:
    inv = new_id("orders", 4)
    for name, values in every_key(ServiceKeys("orders", 3), inv).items():
        tag = "orders" if name in SERVICE_WIDE else "orders:3"
        assert all(key.startswith(f"reliq:{{{tag}}}:") for key in values), (name, values)


@pytest.mark.parametrize(
    "bad", ["", "Orders", "a{b}", "a:b", "a*", "a b", "a.b", "x" * 64, "1abc", "a\x00", "orders\n"]
)
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
    "bad",
    [
        "orders",
        "orders.",
        "orders.UPPER",
        "{x}.abcdefghijklmnopqrstuvwxyz",
        "a.b.c",
        "orders." + "a" * 26 + "\n",
    ],
)
def test_malformed_ids_are_refused(bad: str) -> None:
    with pytest.raises(InvalidName):
        service_of(bad)
