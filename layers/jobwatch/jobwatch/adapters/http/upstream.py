"""`ports.Upstream` over httpx: a few small keep-alive clients ("lanes") per endpoint.

Lanes of a few connections each keep httpcore's pool scan (which grows with pool size,
encode/httpcore#1035) cheap; every client has the same timeouts, no redirects and the endpoint rules
on every connection (`adapters.http.client`). Opened as an async context manager for one cycle.
"""

from __future__ import annotations

import contextlib
import math
from types import TracebackType

import httpx

from jobwatch.adapters.http.client import CONNECTIONS_PER_LANE, fetch, make_http_client
from jobwatch.domain.endpoints import endpoint_of
from jobwatch.settings import UpstreamSettings
from jobwatch.sources.base import HttpRequest, HttpResponse


class HttpUpstream:
    def __init__(self, settings: UpstreamSettings, per_endpoint: int | None = None) -> None:
        self._settings = settings
        self._per_endpoint = per_endpoint or settings.endpoint_concurrency
        self._stack = contextlib.AsyncExitStack()
        self._lanes: dict[str, list[httpx.AsyncClient]] = {}
        self._next: dict[str, int] = {}

    async def __aenter__(self) -> HttpUpstream:
        await self._stack.__aenter__()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        await self._stack.__aexit__(kind, error, trace)

    async def _client(self, endpoint: str) -> httpx.AsyncClient:
        lanes = self._lanes.setdefault(endpoint, [])
        wanted = math.ceil(self._per_endpoint / CONNECTIONS_PER_LANE)
        if len(lanes) < wanted:
            per_lane = math.ceil(self._per_endpoint / wanted)
            lane = await self._stack.enter_async_context(make_http_client(self._settings, per_lane))
            lanes.append(lane)
            return lane
        self._next[endpoint] = (self._next.get(endpoint, 0) + 1) % len(lanes)
        return lanes[self._next[endpoint]]

    async def fetch(self, request: HttpRequest) -> HttpResponse:
        return await fetch(await self._client(endpoint_of(request.url)), request)
