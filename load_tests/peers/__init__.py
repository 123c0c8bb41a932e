"""Adapters for load_tests/bench_workers.py: one module per system, each exposing
``enqueue(n, payload, concurrency) -> seconds`` and ``work()`` through its documented API.

Peers run with the peers venv (load_tests/.peers-venv; arq: load_tests/.peers-venv-arq), reliq and
the bare floor with reliq's venv, always as ``python -m load_tests.peers.run SYSTEM ...`` from the
repository root. The Redis URL comes from ``BENCH_REDIS_URL``; every no-op task calls
``common.tick()``.
"""
