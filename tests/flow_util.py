"""Helpers of the flow-control tests: an independent witness (a file the handlers append to, as
in the chaos harness) and its checks."""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path


def mark(path: Path, event: str, key: str, n: int) -> None:
    """Append one witness line (``S``tart or ``E``nd of invocation ``n`` of ``key``); one write
    of a short line in append mode: lines of concurrent writers do not interleave."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{event} {key} {n}\n".encode())
    finally:
        os.close(fd)


def replay(path: Path) -> tuple[dict[str, int], dict[str, list[int]]]:
    """(most running at once per key, start order per key) from the witness file."""
    running: dict[str, int] = defaultdict(int)
    most: dict[str, int] = defaultdict(int)
    order: dict[str, list[int]] = defaultdict(list)
    for line in path.read_text().splitlines() if path.exists() else []:
        event, key, n = line.split()
        if event == "S":
            running[key] += 1
            most[key] = max(most[key], running[key])
            order[key].append(int(n))
        else:
            running[key] -= 1
    return dict(most), dict(order)


def ends(path: Path) -> int:
    return sum(1 for line in path.read_text().splitlines() if line.startswith("E")) if path.exists() else 0


def stamp(path: Path, key: str, n: int) -> None:
    """Append ``key n time`` (a start, wall clock seconds) to a rate witness."""
    import time

    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{key} {n} {time.time():.4f}\n".encode())
    finally:
        os.close(fd)


def starts(path: Path) -> dict[str, list[float]]:
    out: dict[str, list[float]] = defaultdict(list)
    for line in path.read_text().splitlines() if path.exists() else []:
        key, _, t = line.split()
        out[key].append(float(t))
    return {k: sorted(v) for k, v in out.items()}


def most_in_window(times: list[float], window: float) -> int:
    """The most starts within any ``window`` seconds."""
    best, j = 0, 0
    for i, t in enumerate(times):
        while times[j] < t - window:
            j += 1
        best = max(best, i - j + 1)
    return best
