"""Every test here runs against the session's local Valkey Cluster (``cluster`` in
tests/conftest.py): ``url`` is its ``redis+cluster://`` URL, so ``names`` checks for leaked keys
on the Cluster, node by node."""

from __future__ import annotations

import pytest

from reliq.devserver.cluster import EmbeddedCluster


@pytest.fixture
def url(cluster: EmbeddedCluster) -> str:
    return cluster.url
