"""The handler contexts' types, checked by mypy --strict on typing_sample.py."""

from __future__ import annotations

from pathlib import Path

from mypy import api

SAMPLE = Path(__file__).with_name("typing_sample.py")


def test_step_checks_the_step_function_arguments_and_keeps_its_return_type() -> None:
    out, err, _ = api.run(["--strict", "--no-error-summary", "--show-absolute-path", str(SAMPLE)])
    assert not err, err
    reported = sorted({int(line.split(":")[1]) for line in out.splitlines() if ": error:" in line})
    marked = [n for n, line in enumerate(SAMPLE.read_text().splitlines(), 1) if line.endswith("# error")]
    assert reported == marked, out
