"""The service of the function-tree benchmarks (``load_tests/bench_trees.py``,
``load_tests/bench_trees_restate.py``): the shape of Restate's anchor service (``bench.parent``
calls ``bench.child``), plus the same work as one plain invocation.

- ``child(n)`` returns ``n * 2``;
- ``parent(n)`` calls ``child(n)`` through ``ctx.call`` and returns its result ``+ 1``: a tree of
  two invocations, with the worker's default grace (``suspend_after``, 1 s: a fast child is
  awaited in memory);
- ``parent_s0(n)``: the same with ``suspend_after=0``, so every parent suspends at its call and
  is resumed (replayed) once the child's outcome is in its inbox: a full suspend/replay cycle;
- ``plain(n)``: ``n * 2 + 1`` in one invocation, no child: the baseline.
"""

from reliq import Context, Service

trees = Service("trees")


@trees.handler
async def child(ctx: Context, n: int) -> int:
    return n * 2


@trees.handler
async def parent(ctx: Context, n: int) -> int:
    return int(await ctx.call(child, n)) + 1


@trees.handler(suspend_after=0)
async def parent_s0(ctx: Context, n: int) -> int:
    return int(await ctx.call(child, n)) + 1


@trees.handler
async def plain(ctx: Context, n: int) -> int:
    return n * 2 + 1
