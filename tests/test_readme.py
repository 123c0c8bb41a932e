"""The README's promises: its first lines are the two commands, and the newcomer's walk works as
written (the `hello.py` it shows, called the way it shows, answers what it says, and the
SyncClient snippet prints what its comment says)."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import io
import re
from pathlib import Path

from reliq import App

from .conftest import running
from .gateway.conftest import gateway

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def block(first_line: str) -> str:
    """The fenced python block of the README that starts with ``first_line``."""
    for found in re.findall(r"```python\n(.*?)```", README, re.S):
        if found.startswith(first_line):
            return str(found)
    raise AssertionError(f"no python block starting with {first_line!r}")


def test_the_first_lines_are_the_two_commands() -> None:
    lines = README.splitlines()
    assert lines[:3] == ["# reliq", "", "```"]
    assert lines[3].startswith("make dev ") and lines[4].startswith("make test ") and lines[5] == "```"


def load_hello(tmp_path: Path) -> App:
    (tmp_path / "hello.py").write_text(block("# hello.py"))
    spec = importlib.util.spec_from_file_location("hello", tmp_path / "hello.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    app = module.app
    assert isinstance(app, App)
    return app


async def test_the_newcomer_walk_works_as_written(url: str, tmp_path: Path) -> None:
    app = load_hello(tmp_path)
    curls = re.findall(r"curl -s -X POST localhost:8000(/call/greeter/hello) .* -d '(.*)'\n# (.*)\n", README)
    assert len(curls) == 2, curls
    (path, ok_body, ok_answer), (_, bad_body, bad_answer) = curls
    async with running(app, url), gateway(url, app) as http:  # as `reliq dev hello:app` runs it
        ok = await http.post(path, content=ok_body, headers={"content-type": "application/json"})
        assert ok.status_code == 200 and ok.text == ok_answer
        bad = await http.post(path, content=bad_body, headers={"content-type": "application/json"})
        assert bad.status_code == 422 and bad.json()["detail"] in bad_answer, bad.text
        snippet = block("from reliq import SyncClient").replace("redis://127.0.0.1:6379", url)
        out = io.StringIO()

        def run_snippet() -> None:
            with contextlib.redirect_stdout(out):
                exec(snippet, {})

        await asyncio.to_thread(run_snippet)
    expected = re.search(r"print\(.*\)\s+# (.*)\n", snippet)
    assert expected and out.getvalue() == expected.group(1) + "\n"
