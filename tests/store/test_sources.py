"""The Lua sources: every script has its contract header, takes its keys only from KEYS, names the
libraries it needs and gets exactly those; shared code (clock, fence, finish, ack, terminal set,
timeline) is written once in lua/lib; every assembled script loads on a real server."""

from __future__ import annotations

import re
from pathlib import Path

from reliq.store.cron_scripts import CronScripts
from reliq.store.debounce import DebounceScript
from reliq.store.record import TERMINAL
from reliq.store.scripts import Scripts
from reliq.store.sources import libs, source, uses

from ..conftest import Names, client
from .lua import text

PKG = Path(__file__).resolve().parents[2] / "reliq"
LUA = PKG / "store" / "lua"
SCRIPTS = sorted(LUA.glob("*.lua"))
LIBS = sorted((LUA / "lib").glob("*.lua"))
FUNCTION = re.compile(r"^local function (\w+)", re.M)
CONSTANT = re.compile(r"^local ([A-Z][A-Z_]*) =", re.M)


def defined(lua: str) -> set[str]:
    return set(FUNCTION.findall(lua)) | set(CONSTANT.findall(lua))


def called(lua: str, name: str) -> bool:
    code = re.sub(r"--[^\n]*", "", lua)  # comments name functions without calling them
    return re.search(rf"(?<![\w.:]){name}\b(?!\s*=)", code) is not None


def test_every_script_file_has_a_contract_header_and_is_wrapped() -> None:
    wrapped = {*Scripts.NAMES, *CronScripts.NAMES, *DebounceScript.NAMES}
    assert SCRIPTS and {p.stem for p in SCRIPTS} == wrapped
    for lua in SCRIPTS:
        head = lua.read_text()
        assert "KEYS[1]" in head and "returns" in head, lua.name
        # keys only from KEYS: no key names built inside scripts
        assert "reliq:" not in head.replace("reliq:{S}", ""), lua.name


def test_no_python_module_writes_a_stream_entry_itself() -> None:
    for py in PKG.rglob("*.py"):
        assert not re.search(r"\.xadd\(", py.read_text()), f"bare XADD in {py}: use a script"


def test_declared_libraries_exist_are_used_and_cover_every_lib_call() -> None:
    lib_defs = {p.stem: defined(p.read_text()) for p in LIBS}
    assert {"clock", "fence", "finish", "ack", "terminal", "timeline", "notify"} <= lib_defs.keys()
    for path in [*SCRIPTS, *LIBS]:
        body = path.read_text()
        declared = uses(body)
        assert len(declared) == len(set(declared)), f"{path.name}: a library named twice"
        for lib in declared:
            assert lib in lib_defs, f"{path.name} uses {lib!r}: no lua/lib/{lib}.lua"
            assert any(called(body, f) for f in lib_defs[lib]), f"{path.name} declares {lib!r} unused"
        # every library function it calls comes from a library it declares
        for lib, names in lib_defs.items():
            if lib == path.stem and path.parent.name == "lib":
                continue
            for f in names:
                if called(body, f):
                    assert lib in declared, f"{path.name} calls {f} but does not declare {lib!r}"


def test_libraries_come_once_each_after_what_they_use() -> None:
    assert libs("complete") == ["clock", "fence", "ack", "timeline", "finish", "notify", "enqueue", "wake"]
    assert libs("cancel") == ["clock", "terminal", "timeline", "finish", "notify", "enqueue", "wake"]
    assert libs("reap") == [] and source("reap") == (LUA / "reap.lua").read_text()
    for name in (*Scripts.NAMES, *CronScripts.NAMES, *DebounceScript.NAMES):
        order = libs(name)
        assert len(order) == len(set(order)), name
        for i, lib in enumerate(order):
            assert set(uses((LUA / "lib" / f"{lib}.lua").read_text())) <= set(order[:i]), (name, lib)
        src = source(name)
        assert src.endswith((LUA / f"{name}.lua").read_text())
        assert src.count("local function now_ms") == (1 if "clock" in order else 0)


def test_no_script_redefines_a_library_function_or_retypes_the_clock() -> None:
    lib_names = set().union(*(defined(p.read_text()) for p in LIBS))
    for lua in SCRIPTS:
        body = lua.read_text()
        assert not defined(body) & lib_names, f"{lua.name} redefines {defined(body) & lib_names}"
        assert "'TIME'" not in body and '"TIME"' not in body, f"{lua.name}: use now_ms() (lib/clock)"
        assert "math.floor(tonumber(t[2]) / 1000)" not in body, lua.name
        # the terminal states are spelled once, in lib/terminal.lua
        assert not re.search(r"'succeeded'.*'failed'.*'cancelled'", body), lua.name
    for lib in LIBS:
        if lib.stem != "clock":
            assert "'TIME'" not in lib.read_text(), lib.name


async def test_every_script_assembles_and_loads_on_a_real_server(url: str, names: Names) -> None:
    names()  # the leak check runs; nothing is written
    async with client(url) as c:
        for name in (*Scripts.NAMES, *CronScripts.NAMES, *DebounceScript.NAMES):
            sha = await c.redis.script_load(source(name))
            assert (await c.redis.script_exists(sha)) == [True], name


async def test_the_lua_terminal_set_is_pythons_terminal(url: str, names: Names) -> None:
    names()
    probe = "local out = {} for s in pairs(TERMINAL) do out[#out + 1] = s end return out"
    src = (LUA / "lib" / "terminal.lua").read_text() + probe
    async with client(url) as c:
        assert set(text(await c.redis.eval(src, 0))) == set(TERMINAL)


async def test_scripts_are_reloaded_after_the_server_forgets_them(url: str, names: Names) -> None:
    svc = names()
    async with client(url) as c:
        await c.redis.script_flush()
        acc = await c.send(svc, "h", None)  # EVALSHA -> NOSCRIPT -> reload
        assert (await c.get(acc.id)) is not None
        await c.cancel(acc.id)
