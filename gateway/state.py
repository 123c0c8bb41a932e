"""What the gateway keeps on ``app.state``: settings, the reliq Client, the catalog, the placer,
metrics, the durability gate (``gateway.durability``), admission control
(``gateway.admission``) and the cap on waiting requests (``gateway.waiting``). One per app, built by
``create_app``; routes reach it with ``state_of``."""

from __future__ import annotations

from dataclasses import dataclass, field

from starlette.requests import Request

from reliq import Client

from .admission import Admission
from .catalog import Catalog
from .durability import DurabilityGate
from .metrics import Metrics
from .placement import Placer
from .settings import GatewaySettings
from .waiting import WaiterCap


@dataclass(eq=False)
class GatewayState:
    settings: GatewaySettings
    client: Client
    catalog: Catalog
    placer: Placer
    metrics: Metrics = field(default_factory=Metrics)
    gate: DurabilityGate = field(init=False)
    admission: Admission = field(init=False)
    waiting: WaiterCap = field(init=False)

    def __post_init__(self) -> None:
        self.gate = DurabilityGate(self.settings.durability, self.client, self.metrics)
        self.admission = Admission(self.client, self.settings.max_backlog)
        self.waiting = WaiterCap(self.settings.max_waiters)

    @property
    def durability_level(self) -> str:
        return self.settings.durability


def state_of(request: Request) -> GatewayState:
    st: GatewayState = request.app.state.reliq
    return st
