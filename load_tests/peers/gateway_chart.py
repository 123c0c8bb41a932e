"""``python -m load_tests.peers.gateway_chart gateway-<ts>.json out.png`` (peers venv: matplotlib):
req/s and p99 per endpoint of the gateway benchmark, the FastAPI no-op marked as the baseline."""

from __future__ import annotations

import json
import sys
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def main() -> None:
    with open(sys.argv[1]) as f:
        doc: dict[str, Any] = json.load(f)
    rows = doc["results"]
    labels = [r["endpoint"] for r in rows][::-1]
    colors = ["#9e9e9e" if "FastAPI" in r["endpoint"] else "#1565c0" for r in rows][::-1]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 0.5 * len(rows) + 2.2))
    rps = [r["rps"] for r in rows][::-1]
    left.barh(labels, rps, color=colors)
    left.axvline(rows[0]["rps"], color="#c62828", ls="--", lw=1)
    for y, v in enumerate(rps):
        left.text(v, y, f" {v:,.0f}", va="center", fontsize=8)
    left.set_xlabel("requests/s, wrk -c64 (dashed: the FastAPI no-op)")
    left.set_title(f"gateway, {doc['duration_s']} s per endpoint, fsync always")
    p99 = [r["p99_ms"] for r in rows][::-1]
    right.barh(labels, p99, color=colors)
    right.axvline(50, color="#c62828", ls="--", lw=1)
    for y, v in enumerate(p99):
        right.text(v, y, f" {v:.1f}", va="center", fontsize=8)
    right.set_xlabel("p99 latency, ms (dashed: 50 ms target)")
    right.set_yticks([])
    fig.tight_layout()
    fig.savefig(sys.argv[2], dpi=110)


if __name__ == "__main__":
    main()
