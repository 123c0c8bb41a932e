"""lua/lib/timeline.lua ``tl_line``: the common lines are concatenated instead of cjson-encoded
(Valkey's instructions per drained invocation: 327k -> 308-314k, load_tests/instructions_per_task);
every line is byte for byte what cjson made of the trimmed array before."""

from __future__ import annotations

from pathlib import Path

from ..conftest import Names, client

LIB = Path(__file__).resolve().parents[2] / "reliq" / "store" / "lua" / "lib" / "timeline.lua"
# the encoder before the fast path, as the reference
REFERENCE = """
local function reference(at, ev, actor, epoch, detail, untl, count)
  local a = {at, ev, actor or '', tonumber(epoch) or 0, detail or '',
    tonumber(untl) or 0, tonumber(count) or 0}
  local n = 7
  while n > 2 and (a[n] == '' or a[n] == 0) do
    a[n] = nil
    n = n - 1
  end
  return cjson.encode(a)
end
"""
NOW = 1796287828548
CASES = """{
  {NOW, 'claimed', 'bench-1', 1}, {NOW, 'reclaimed', 'host-12-ab', 12}, {NOW, 'succeeded', 'w', '3'},
  {NOW, 'accepted', '', 0, 'pending'}, {NOW, 'accepted', '', 0, 'scheduled', NOW + 5000},
  {NOW, 'promoted'}, {NOW, 'released', 'ops'}, {NOW, 'cancelled', ''}, {NOW, 'cancelled', 'w', 0},
  {NOW, 'step', 'w', 2, 'charge card'}, {NOW, 'retry', 'w', 2, 'attempt 2', NOW + 100},
  {NOW, 'renewed', 'w', 1, '', NOW + 30000, 4}, {NOW, 'gap', '', 0, '', 0, 17},
  {NOW, 'step', 'w"q', 1}, {NOW, 'step', 'a\\\\b', 1}, {NOW, 'step', 'a/b', 1}, {NOW, 'x', 'tab\\t', 1},
  {NOW, 'resumed', 'w', 0, 'child \\226\\156\\147 done'}, {0, 'x'}, {NOW, 'x', nil, nil, nil},
}"""


async def test_every_line_is_what_cjson_made_of_it(url: str, names: Names) -> None:
    names()
    script = (
        LIB.read_text()
        + REFERENCE
        + f"local NOW = {NOW}\nlocal cases = {CASES}\nlocal out = {{}}\n"
        + "for i, c in ipairs(cases) do\n"
        + "  out[#out + 1] = tl_line(c[1], c[2], c[3], c[4], c[5], c[6], c[7])\n"
        + "  out[#out + 1] = reference(c[1], c[2], c[3], c[4], c[5], c[6], c[7])\n"
        + "end\nreturn out\n"
    )
    async with client(url) as c:
        got = await c.redis.eval(script, 0)
    pairs = list(zip(got[::2], got[1::2], strict=True))
    assert len(pairs) == 20
    for line, reference in pairs:
        assert line == reference
    assert pairs[0][0] == b'[1796287828548,"claimed","bench-1",1]'
