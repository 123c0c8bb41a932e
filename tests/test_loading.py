"""``MODULE:ATTRIBUTE`` names: an App or a Service loads; anything else is a ``LoadError`` that
the CLI prints as one line and exits 2 with, before anything starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from reliq import App
from reliq.cli.main import main
from reliq.loading import LoadError, load_app


def test_an_app_or_a_lone_service_loads() -> None:
    app = load_app("examples.shop:app")
    assert isinstance(app, App) and {"orders", "shipping", "notifications"} <= set(app.services)
    assert set(load_app("examples.shop:orders").services) == {"orders"}


@pytest.mark.parametrize(
    ("spec", "said"),
    [
        ("examples.shop", "expected MODULE:ATTRIBUTE, got 'examples.shop'"),
        ("no_such_module:app", "no module named 'no_such_module'"),
        ("examples.shop:nope", "module 'examples.shop' has no attribute 'nope'"),
        ("examples.shop:log", "is a Logger, not a reliq App or Service"),
    ],
)
def test_a_name_that_does_not_load_is_one_line_and_exit_2(
    spec: str, said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(LoadError, match=said):
        load_app(spec)
    for argv in (["worker", spec], ["dev", spec, "--redis-port", "1"]):
        with pytest.raises(SystemExit) as e:
            main(argv)
        assert e.value.code == 2
        err = capsys.readouterr().err
        assert said in err and err.count("\n") == 1 and "Traceback" not in err


def test_a_missing_import_inside_the_users_module_keeps_its_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "broken_app.py").write_text("import definitely_not_installed\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError, match="definitely_not_installed"):
        load_app("broken_app:app")
