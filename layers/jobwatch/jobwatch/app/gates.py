"""Per-endpoint limits inside one poll cycle: concurrency, a request rate, and rests asked by upstream.

Polls wait at their endpoint's gate *before* taking one of the cycle's slots, so a slow or saturated
endpoint never holds slots other endpoints could use (docs/decisions.md, D15, D20).
"""

from __future__ import annotations

import asyncio

from jobwatch.domain.endpoints import endpoint_of
from jobwatch.domain.shards import shared_limit, shared_rate
from jobwatch.settings import UpstreamSettings
from jobwatch.sources import UnknownSourceError, get_source

RATE_LIMIT_PAUSE_S = 1.0
"""How long an endpoint rests within a cycle after a rate-limit answer that names no Retry-After."""


class RateLimiter:
    """Spaces requests to one endpoint at least 1/rps apart (a token bucket of size one)."""

    def __init__(self, rps: float | None) -> None:
        self._interval = 0.0 if not rps else 1.0 / rps
        self._next = 0.0
        self._lock = asyncio.Lock()

    async def wait(self) -> None:
        if not self._interval:
            return
        async with self._lock:
            loop = asyncio.get_running_loop()
            delay = self._next - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            self._next = max(loop.time(), self._next) + self._interval


class EndpointGate:
    """One endpoint's concurrency slots, request rate and current rest."""

    def __init__(self, concurrency: int, rps: float | None) -> None:
        self.concurrency, self.rps = concurrency, rps
        self.slots = asyncio.Semaphore(concurrency)
        self.rate = RateLimiter(rps)
        self._resting_until = 0.0

    def rest(self, seconds: float) -> None:
        """Upstream rate-limited us: send nothing more to this endpoint for `seconds`."""
        until = asyncio.get_running_loop().time() + seconds
        self._resting_until = max(self._resting_until, until)

    def resting_for(self) -> float:
        return max(0.0, self._resting_until - asyncio.get_running_loop().time())


def documented_rps(source_name: str) -> float | None:
    try:
        return get_source(source_name).max_requests_per_second
    except UnknownSourceError:
        return None


class EndpointGates:
    """The gates of one cycle, created on first use per endpoint with the strictest known rate.

    A poll worker holds one of an endpoint's sub-shards (D44): `share` divides the endpoint's
    concurrency and rate, so all the workers polling it together stay within its limits."""

    def __init__(self, settings: UpstreamSettings, share: int = 1) -> None:
        self._settings = settings
        self._share = share
        self._gates: dict[str, EndpointGate] = {}

    def for_job(self, endpoint_url: str, source: str) -> EndpointGate:
        endpoint = endpoint_of(endpoint_url)
        gate = self._gates.get(endpoint)
        if gate is None:
            limits = [r for r in (documented_rps(source), self._settings.endpoint_max_rps) if r]
            gate = self._gates[endpoint] = EndpointGate(
                shared_limit(self._settings.endpoint_concurrency, self._share),
                shared_rate(min(limits) if limits else None, self._share),
            )
        return gate
