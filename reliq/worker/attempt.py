"""The state of one attempt besides what a handler reads: its keys, its journal
(``reliq.worker.journal``) and its durable waits (``reliq.worker.waits``), each made on first use:
most handlers never touch the journal, and the hot path stays lean."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from reliq.errors import LeaseLost
from reliq.store.keys import ServiceKeys
from reliq.worker.journal import Journal
from reliq.worker.limits import Limiter
from reliq.worker.waits import Waits

if TYPE_CHECKING:
    from reliq.client import Client


class Holder(Protocol):
    lease_until: float  # time.monotonic() by which this worker's lease may have lapsed


class Attempt:
    def __init__(
        self,
        client: Client,
        id: str,
        epoch: int,
        deadline: float | None,
        fresh: bool,
        grace: float,
        limiter: Limiter | None,
    ) -> None:
        self._client = client
        self.id = id
        self.epoch = epoch
        self.deadline = deadline
        self._fresh, self._grace, self._limiter = fresh, grace, limiter
        self._key_cache: ServiceKeys | None = None
        self._waits: Waits | None = None
        self._journal: Journal | None = None
        self.on_waits: Callable[[Waits], None] | None = None  # the worker's hook (cancels reach it)
        self.holder: Holder | None = None  # the worker's in-flight entry (its local lease deadline)
        self.ended = False  # its handler returned: the context is not to be used any more
        self._step_uses: dict[str, int] = {}

    def _step_key(self, name: str) -> str:
        """The journal name of this use of step ``name``: the n-th use in one run is ``name#n``
        (the first keeps its name), so a loop over one name journals each step, and a replay (the
        same code, in the same order) finds each. Before, a second use got the first's result."""
        n = self._step_uses[name] = self._step_uses.get(name, 0) + 1
        return name if n == 1 else f"{name}#{n}"

    def _check_lease(self) -> None:
        """``LeaseLost`` once this worker's lease may have lapsed (by the local clock, from the
        send of the last claim or renewal): a process paused or cut off from Redis past its lease
        must not start an effect that another worker may be running by now."""
        if self.holder is not None and time.monotonic() >= self.holder.lease_until:
            raise LeaseLost(self.id)

    @property
    def _keys(self) -> ServiceKeys:
        if self._key_cache is None:
            self._key_cache = self._client.keys_of(self.id)
        return self._key_cache

    @property
    def waits(self) -> Waits:
        """This attempt's durable waits (``reliq.worker.waits``)."""
        if self._waits is None:
            self._waits = Waits(
                self._client,
                self._keys,
                self.id,
                grace=self._grace,
                deadline=self.deadline,
                limiter=self._limiter,
            )
            self._prepare_waits(self._waits)
            if self.on_waits is not None:
                self.on_waits(self._waits)
        return self._waits

    def _prepare_waits(self, waits: Waits) -> None:
        """Set up new waits (``Context``: a cancel reaching them is journaled first)."""

    @property
    def _j(self) -> Journal:
        if self.ended:  # a context kept past its handler (a global, a task left running)
            raise RuntimeError(f"the context of {self.id} is used after its handler returned")
        if self._journal is None:
            self._journal = Journal(self._client, self._keys, self.id, self.epoch, fresh=self._fresh)
        return self._journal
