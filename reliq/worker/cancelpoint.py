"""Where a cancelled invocation's handler is shown ``Cancelled``, journaled, so that every replay
shows it at the same operation.

A handler sees ``reliq.Cancelled`` once per cancel: at the durable awaits it waits at in memory
when the cancel arrives; in the run claimed to compensate, at the first operation the journal
cannot answer; at a child registration ``link_child`` refuses because the cancel was requested;
or at the await of a child that ended cancelled once the cancel was requested (usually the
cancel's own walk down the tree: such an await raises ``Cancelled`` on every run). Before the
handler first sees it, those operations' positions
(``s:<step>``, ``o:<call order>``, ``c:<child>``, ``p:<promise>``, ``t:<timer>``) are journaled in
the inbox under ``k`` (``note.lua``, which also marks the cancel seen, so the compensation may
start children). A replay raises ``Cancelled`` at exactly those operations, whatever the journal
holds for them by now (the walk's outcomes of cancelled children arrive later), and nowhere
else: the compensation that followed replays from the journal and goes on, also after it
suspended. A child's cancelled outcome shown as ``ChildCancelled`` before the invocation's own
cancel was requested is marked (``v:c:<child>``), so a later compensating run shows it the same.
"""

from __future__ import annotations

import msgspec

from reliq.client.outcome import read
from reliq.errors import Cancelled
from reliq.store.record import Field
from reliq.worker.attempt import Attempt
from reliq.worker.waits import Waits, as_value

POINT = "k"  # the inbox field that lists where Cancelled was shown


class CancelPoints(Attempt):
    compensating = False  # claimed to compensate: the cancel was requested before this run
    _shown: set[str]

    def _prepare_waits(self, waits: Waits) -> None:
        waits.on_cancel = self._show_cancel  # a cancel reaching awaits in memory journals first

    def _journaled_points(self) -> list[str] | None:
        raw = self._j.inbox.get(POINT)
        return None if raw is None else list(msgspec.json.decode(raw))

    def _at_point(self, *ops: str) -> None:
        """At an operation's start (the journal loaded): a replay raises ``Cancelled`` where an
        earlier run showed it (once per operation and run)."""
        points = self._journaled_points()
        if points is None:
            return
        for op in ops:
            if op in points and op not in self._shown:
                self._shown.add(op)
                self._cancelled()

    async def _not_journaled(self, op: str) -> None:
        """Reached an operation the journal has no answer for: in a compensating run that has
        not shown ``Cancelled`` yet (in this run or, journaled, in an earlier one), here."""
        if self.compensating and not self._shown and POINT not in self._j.inbox:
            await self._show_cancel([op])

    async def _show_cancel(self, ops: list[str]) -> None:
        """Journal ``ops`` as where ``Cancelled`` is shown, then raise it (``LeaseLost`` when
        fenced). Marked shown before the write: a concurrent operation goes on normally; and no
        suspension meanwhile (a ``gather``'s other branch would unwind the handler first)."""
        self._shown.update(ops)
        self.waits.busy += 1
        try:
            await self._j.note(self.waits, POINT, msgspec.json.encode(ops).decode())
        finally:
            self.waits.step_done()
        self._cancelled()

    async def _finished_child(self, child: str, field: str) -> bytes | None:
        """In a compensating run that has not shown ``Cancelled``: the outcome of a child that
        finished (its record), although the inbox lacks it. An earlier run read that success
        from the record and went on before the relay delivered it, so showing ``Cancelled``
        here would replay another path than that run took (and the compensation's first call
        would take the next call's position: ``Nondeterminism``)."""
        if not self.compensating or self._shown or POINT in self._j.inbox:
            return None
        out = await read(self._client, child)
        value = as_value(out) if out is not None else None
        if value is not None and value[:1] != b"S":
            value = await self.waits.journal(field, value)
        return value

    async def _child_cancelled(self, field: str) -> None:
        """A child's ``cancelled`` outcome is about to be shown: as ``Cancelled`` once this
        invocation's own cancel was requested (the cancel's walk ended the child, usually), else
        as ``ChildCancelled``, marked so that every later run, compensating or not, shows it so."""
        j = self._j
        if f"v:{field}" in j.inbox:
            return
        if self.compensating or self._shown or POINT in j.inbox:
            requested: object = True
        else:
            requested = await self._client.redis.hget(self._keys.inv(self.id), Field.CANCEL)
        if not requested:
            await j.note(self.waits, f"v:{field}", 1)
            return
        if self._shown or POINT in j.inbox:
            self._shown.add(field)
            self._cancelled()  # shown before, elsewhere: nothing more to journal
        await self._show_cancel([field])

    def _cancelled(self) -> None:
        self.waits.cancel_seen = True
        raise Cancelled(f"invocation {self.id} cancelled")
