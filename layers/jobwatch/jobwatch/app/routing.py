"""Routing at delivery time: the stored routes (or the deployment's defaults), cached briefly, and
the record of where each transition was sent.

A transition's deliveries are decided once, when the notifier first reads it, and kept in the ledger
(`record_routing`): a redelivered message, a retried copy or a second notifier handling the same
batch all see the same destinations even if someone edits the routes meanwhile, and a job's next
transition knows whether its predecessor was sent to a destination at all (an ordered destination
waits only for predecessors routed to it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import TypeAdapter

from jobwatch.domain.model import Transition
from jobwatch.domain.routing import Delivery, Destination, Route, route
from jobwatch.ports import Clock, DeliveryLedger, RouteStore

_DESTINATION: TypeAdapter[Any] = TypeAdapter(Destination)


def delivery_to_wire(delivery: Delivery) -> dict[str, Any]:
    return {
        "id": delivery.destination_id,
        "destination": delivery.destination.to_wire(),
        "routes": list(delivery.routes),
        "mentions": list(delivery.mentions),
    }


def delivery_from_wire(wire: dict[str, Any]) -> Delivery:
    destination = _DESTINATION.validate_python(wire["destination"])
    return Delivery(destination, list(wire.get("routes", [])), list(wire.get("mentions", [])))


class Router:
    """The routes in force: the stored ones (re-read after `ttl_s`), or the defaults when none is."""

    def __init__(
        self, routes: RouteStore, defaults: Sequence[Route], clock: Clock, ttl_s: float = 30.0
    ) -> None:
        self._store = routes
        self._defaults = list(defaults)
        self._clock = clock
        self._ttl_s = ttl_s
        self._cached: list[Route] | None = None
        self._read_at = 0.0

    def current(self) -> list[Route]:
        now = self._clock.now()
        if self._cached is None or now - self._read_at >= self._ttl_s:
            self._cached = self._store.list()
            self._read_at = now
        return self._cached or self._defaults

    def deliveries(self, transition: Transition) -> list[Delivery]:
        return route(self.current(), transition)


MAX_PREDECESSOR_WALK = 32
"""How far back the order check follows a job's transitions routed elsewhere (each step one read)."""


class RoutingRecord:
    """The ledger's record of where transitions went, as the engine asks about predecessors."""

    def __init__(self, ledger: DeliveryLedger, router: Router, clock: Clock) -> None:
        self._ledger = ledger
        self._router = router
        self._clock = clock

    def deliveries_of(self, transition: Transition) -> list[Delivery]:
        """Route a transition the first time it is read; afterwards, the destinations recorded then."""
        wire = [delivery_to_wire(d) for d in self._router.deliveries(transition)]
        stored = self._ledger.record_routing(
            transition.transition_id, wire, self._clock.now(), transition.previous_transition_id
        )
        return [delivery_from_wire(item) for item in stored]

    def delivery_to(self, transition: Transition, destination_id: str) -> Delivery | None:
        """The recorded delivery of a transition to one destination (a retried copy names it)."""
        for item in self._ledger.routing(transition.transition_id) or []:
            if item.get("id") == destination_id:
                return delivery_from_wire(item)
        return None

    def predecessor_here(self, previous: str, destination_id: str) -> str | None:
        """The transition a destination must have before this one: `previous` if the routes sent it
        there (or it is not routed yet, so they may), else the nearest earlier one of the job that went
        there, following the previous ids recorded with each routing; None when none did.

        Without the walk, a job's FAILED routed to a webhook would not wait for its UNREACHABLE still
        being retried there, whenever a RECOVERED routed elsewhere sat between the two."""
        current: str | None = previous
        for _ in range(MAX_PREDECESSOR_WALK):
            if current is None:
                return None
            recorded = self._ledger.routing(current)
            if recorded is None or any(item.get("id") == destination_id for item in recorded):
                return current
            current = self._ledger.routed_previous(current)
        return None
