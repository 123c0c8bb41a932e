"""``python -m load_tests.peers.run SYSTEM enqueue N [--payload B] [--concurrency C]`` prints
``{"seconds": ...}`` (the enqueue loop only, after connecting); ``... SYSTEM work`` runs the
system's worker until it is terminated. Per-task INFO logging is off for every system."""

from __future__ import annotations

import argparse
import importlib
import json
import logging


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("system")
    p.add_argument("cmd", choices=["enqueue", "work"])
    p.add_argument("n", type=int, nargs="?", default=0)
    p.add_argument("--payload", type=int, default=0, help="payload bytes (reliq only)")
    p.add_argument("--concurrency", type=int, default=1, help="enqueue calls in flight (async APIs)")
    a = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    mod = importlib.import_module(f"load_tests.peers.{a.system}_peer")
    if a.cmd == "enqueue":
        seconds = mod.enqueue(a.n, a.payload, a.concurrency)
        print(json.dumps({"n": a.n, "seconds": seconds}))
    else:
        mod.work()


if __name__ == "__main__":
    main()
