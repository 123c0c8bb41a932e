"""The package rules, read from the source: who may import whom.

Every ``import`` and ``from ... import`` in every module under reliq/ and gateway/ (at module
level, in function bodies and under ``TYPE_CHECKING`` alike: each is a dependency) is resolved to
a unit, and each unit may import only the units ``MAY_IMPORT`` lists for it. The gateway depends
on reliq, never the reverse: reliq reaches the gateway by name (``reliq.loading.GATEWAY_SERVE``).
A module that belongs to no unit fails the test, so a new one comes with its rule.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# The units below reliq itself, bottom up. "reliq" alone is the public API (reliq/__init__.py):
# it imports most of the library, so nothing inside reliq may import it.
BASE = frozenset(
    {
        "reliq.codec",
        "reliq.errors",
        "reliq.backoff",
        "reliq.tracing",
        "reliq.context",
        "reliq.logformat",
        "reliq.schemacheck",
    }
)
STORE = BASE | {"reliq.store"}
CORE = STORE | {"reliq.client", "reliq.service"}
LIBRARY = CORE | {"reliq", "reliq.worker", "reliq.admin", "reliq.loading"}

MAY_IMPORT: dict[str, frozenset[str]] = {
    "reliq.codec": frozenset(),
    "reliq.errors": frozenset(),
    "reliq.tracing": frozenset(),
    "reliq.logformat": frozenset(),  # log lines as text or JSON: the CLI's and the gateway workers'
    "reliq.context": frozenset(),  # the Context protocol handlers see
    "reliq.schemacheck": frozenset(),  # a payload against published schemas: gateway and CLI
    "reliq.backoff": frozenset({"reliq.errors"}),
    # the data model and the scripts: the bottom of everything that touches Redis
    "reliq.store": frozenset({"reliq.codec", "reliq.errors"}),
    "reliq.service": STORE,
    # the Client, with the one producer path (producer.py) and the one result path (outcome.py)
    "reliq.client": STORE,
    # the admin views read the store (through the Client's connection), never a worker
    "reliq.admin": STORE | {"reliq.client"},
    "reliq.worker": CORE,
    "reliq.loading": frozenset({"reliq.service"}),
    "reliq.devserver": CORE | {"reliq.worker", "reliq.loading"},
    "reliq.cli": LIBRARY | {"reliq.devserver"},
    "reliq.__main__": frozenset({"reliq.cli"}),
    "reliq": CORE | {"reliq.worker"},
    # the bundled examples are user code: they see the public API only
    "reliq.examples": frozenset({"reliq"}),
    # the gateway is a client of the library; the CLI and the dev servers are not for it
    "gateway": LIBRARY,
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_module(dotted: str) -> bool:
    base = ROOT.joinpath(*dotted.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def imported(path: Path) -> Iterator[str]:
    """The modules ``path`` imports, absolute, ``from pkg import submodule`` as the submodule."""
    here = module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join([*base, node.module] if node.module else base)
            else:
                source = node.module or ""
            for alias in node.names:
                sub = f"{source}.{alias.name}"
                yield sub if is_module(sub) else source


def unit(module: str) -> str | None:
    """The unit a module belongs to: the longest ``MAY_IMPORT`` key it is or is inside of;
    None for a module outside reliq and gateway (the standard library, dependencies)."""
    if module.split(".")[0] not in ("reliq", "gateway"):
        return None
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        if ".".join(parts[:n]) in MAY_IMPORT:
            return ".".join(parts[:n])
    return module  # no rule: reported by the test


def graph() -> dict[str, set[tuple[str, str]]]:
    """unit -> {(importing module, imported module)} for every import between different units."""
    out: dict[str, set[tuple[str, str]]] = {}
    for top in ("reliq", "gateway"):
        for path in sorted((ROOT / top).rglob("*.py")):
            src = module_name(path)
            out.setdefault(unit(src) or src, set())
            for target in imported(path):
                if (dst := unit(target)) is not None and dst != unit(src):
                    out[unit(src) or src].add((src, target))
    return out


def test_every_module_belongs_to_a_unit_with_a_rule() -> None:
    assert sorted(set(graph()) - set(MAY_IMPORT)) == []


def test_each_unit_imports_only_what_its_rule_allows() -> None:
    broken = sorted(
        f"{src} imports {dst} ({unit(dst)} is not in the rule of {u})"
        for u, edges in graph().items()
        for src, dst in edges
        if unit(dst) not in MAY_IMPORT.get(u, frozenset())
    )
    assert broken == []


def test_reliq_never_imports_the_gateway_and_the_gateway_uses_reliq() -> None:
    edges = graph()
    into_gateway = [e for u, es in edges.items() if u != "gateway" for e in es if unit(e[1]) == "gateway"]
    assert into_gateway == []
    assert ("gateway.app", "reliq.loading") in edges["gateway"]  # the walk sees function-level imports
    assert ("gateway.catalog", "reliq") in edges["gateway"]  # and `from reliq import App`


def test_the_rules_themselves_form_no_cycle() -> None:
    def below(start: str) -> set[str]:
        seen: set[str] = set()
        todo = list(MAY_IMPORT[start])
        while todo:
            if (u := todo.pop()) not in seen:
                seen.add(u)
                todo.extend(MAY_IMPORT.get(u, ()))
        return seen

    assert [u for u in MAY_IMPORT if u in below(u)] == []


def test_reliq_finds_the_gateway_by_name() -> None:
    import gateway.serve
    from reliq.loading import GATEWAY_SERVE, load_object

    assert load_object(GATEWAY_SERVE) is gateway.serve.serve
