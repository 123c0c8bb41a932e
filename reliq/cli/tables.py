"""The CLI's tables on a terminal of any width: no cell is ever cut with an ellipsis, and the
invocation ids (copied into ``reliq inspect``/``redrive``) stay whole on one line while the other
columns wrap to make room.

rich shrinks the widest columns first once a table is wider than the terminal, and its default
overflow cuts with "…". Here every column folds instead (a long word goes on over the next line),
and the id columns do not wrap, as long as the other columns keep ``READABLE`` characters each;
on a terminal too narrow for that, the ids fold too: split over lines, but complete.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # rich is imported by the admin commands only (worker start stays lean)
    from rich.console import Console
    from rich.table import Column, Table

READABLE = 4  # the narrowest a wrapping column may get before the id columns fold as well


def terminal() -> Console:
    """The console the admin commands print to. rich ends a write to a closed stdout with exit 1;
    this one raises ``BrokenPipeError`` instead, which ``reliq.cli.main`` ends quietly with exit
    141 like every other command."""
    from rich.console import Console

    class _Console(Console):
        def on_broken_pipe(self) -> None:
            raise BrokenPipeError

    return _Console()


def new_table(title: str, columns: Iterable[str], ids: Collection[str] = ()) -> Table:
    """A table whose ``columns`` fold rather than cut; the ones in ``ids`` do not wrap."""
    from rich.table import Table

    t = Table(title=title)
    for col in columns:
        t.add_column(col, overflow="fold", no_wrap=col in ids)
    return t


def print_table(console: Console, table: Table) -> None:
    """Print ``table``; its id columns stay on one line when the console is wide enough for them
    and ``READABLE`` characters of every other column, else they fold like the others."""
    widths = [(col.no_wrap, _natural(console, col)) for col in table.columns]
    needed = sum(w if whole else min(w, READABLE) for whole, w in widths) + 3 * len(widths) + 1
    if needed > console.width:  # padding and borders: 3 a column, plus the last border
        for col in table.columns:
            col.no_wrap = False
    console.print(table)


def _natural(console: Console, column: Column) -> int:
    """The width of the column's widest line (header included), without wrapping."""
    from rich.measure import Measurement

    cells = [column.header, *column.cells]
    return max(Measurement.get(console, console.options, cell).maximum for cell in cells)


def ago(ms: int | None) -> str:
    """A duration in ms as ``12s``, ``3m 4s`` or ``5h 6m`` (``-`` for none)."""
    if ms is None:
        return "-"
    s = max(0, ms) // 1000
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60}s"
    return f"{s // 3600}h {s % 3600 // 60}m"
