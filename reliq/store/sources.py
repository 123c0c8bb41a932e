"""The Lua sources as loaded: each script in ``lua/`` with the shared libraries it needs.

Code several scripts share is written once in ``lua/lib/``: ``clock`` (server time in ms),
``terminal`` (the final states, as ``record.TERMINAL``), ``fence`` (the lease-epoch check),
``ack`` (XACK + XDEL), ``finish`` (the terminal transition), ``timeline`` (timeline events, the
per-minute counters, the audit stream). A script, or a library, names the libraries it calls in
its header, in one line ``-- uses: clock, fence``. ``source`` prepends exactly those, each once and
after the libraries it uses itself, so a script's text is fixed (one SHA) and carries no library it
does not name.
"""

from __future__ import annotations

import re
from importlib.resources import files

_USES = re.compile(r"^-- uses: *(.*)$")


def uses(lua: str) -> list[str]:
    """The libraries (``lua/lib/<name>.lua``) a script or library declares in its header, in the
    line ``-- uses: clock, fence``; none without that line."""
    for line in lua.splitlines():
        if not line.startswith("--"):
            break
        if m := _USES.match(line):
            return [n.strip() for n in m.group(1).split(",") if n.strip()]
    return []


def _read(path: str) -> str:
    return (files("reliq.store") / "lua" / path).read_text()


def libs(name: str) -> list[str]:
    """The libraries script ``name`` gets, each once, every one after the libraries it uses."""
    order: list[str] = []

    def visit(lib: str, path: tuple[str, ...]) -> None:
        if lib in path:
            raise ValueError(f"lua/lib: {' -> '.join((*path, lib))} is a cycle")
        if lib not in order:
            for dep in uses(_read(f"lib/{lib}.lua")):
                visit(dep, (*path, lib))
            order.append(lib)

    for lib in uses(_read(f"{name}.lua")):
        visit(lib, ())
    return order


def source(name: str) -> str:
    """Script ``name`` as loaded: its libraries prepended to its body (fixed text: one SHA)."""
    return "".join(_read(f"lib/{lib}.lua") for lib in libs(name)) + _read(f"{name}.lua")
