"""``python -m load_tests.peers.chart workers-<ts>.json out.png`` (peers venv: matplotlib):
drain rate (log scale) and peak RSS per system, and the reliq scaling rows when present."""

from __future__ import annotations

import json
import sys
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

COLORS = {"floor": "#9e9e9e", "reliq": "#1565c0", "peer": "#ef6c00"}


def main() -> None:
    with open(sys.argv[1]) as f:
        doc: dict[str, Any] = json.load(f)
    rows = [r for r in doc["results"] if "drain_per_s" in r]
    scaling = [r for r in doc.get("scaling", []) if "drain_per_s" in r]
    ncols = 3 if scaling else 2
    fig, axes = plt.subplots(1, ncols, figsize=(6 * ncols, 0.45 * len(rows) + 2.2), squeeze=False)
    labels = [r["system"] for r in rows][::-1]
    colors = [COLORS.get(r["kind"], "#555") for r in rows][::-1]
    ax = axes[0][0]
    rates = [r["drain_per_s"] for r in rows][::-1]
    ax.barh(labels, rates, color=colors)
    ax.set_xscale("log")
    ax.set_xlabel("tasks/s drained by one worker process (log scale)")
    for y, v in enumerate(rates):
        ax.text(v, y, f" {v:,}", va="center", fontsize=8)
    ax.set_title(f"no-op drain, N={doc['n']:,}, fsync always")
    ax = axes[0][1]
    rss = [r["peak_rss_mb"] for r in rows][::-1]
    ax.barh(labels, rss, color=colors)
    ax.axvline(55, color="#c62828", ls="--", lw=1)
    ax.set_xlabel("worker peak RSS, MB (dashed: 55 MB target)")
    for y, v in enumerate(rss):
        ax.text(v, y, f" {v:.0f}", va="center", fontsize=8)
    ax.set_title("memory")
    if scaling:
        ax = axes[0][2]
        names = [
            f"{r['workers']}w"
            if r["scenario"] == "workers"
            else f"N={r['n']:,}"
            if r["scenario"] == "queue size"
            else f"{r['payload_bytes']:,} B"
            for r in scaling
        ][::-1]
        ax.barh(names, [r["drain_per_s"] for r in scaling][::-1], color=COLORS["reliq"])
        ax.set_xlabel("reliq tasks/s (defaults)")
        ax.set_title("reliq: workers, queue size, payload")
    fig.suptitle(f"reliq vs peers — {doc['timestamp']}, {doc['cpus']} CPUs shared", fontsize=10)
    fig.tight_layout()
    fig.savefig(sys.argv[2], dpi=110)


if __name__ == "__main__":
    main()
