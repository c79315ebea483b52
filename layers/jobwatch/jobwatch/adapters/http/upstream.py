"""`ports.Upstream` over httpx: one client (one aiohttp pool) per cycle, every answer bounded.

The pool holds `poll_concurrency` connections in all and `endpoint_concurrency` per host; the
per-endpoint gates of the application (`app.gates`) decide who may send. Opened as an async
context manager for one cycle, so its connections close when the cycle ends.
"""

from __future__ import annotations

from types import TracebackType

import httpx

from jobwatch.adapters.http.client import fetch, make_http_client
from jobwatch.settings import UpstreamSettings
from jobwatch.sources.base import HttpRequest, HttpResponse


class HttpUpstream:
    def __init__(self, settings: UpstreamSettings, max_connections: int = 64) -> None:
        self._deadline_s = settings.upstream_deadline_s
        self._client: httpx.AsyncClient = make_http_client(settings, max_connections)

    async def __aenter__(self) -> HttpUpstream:
        await self._client.__aenter__()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        await self._client.__aexit__(kind, error, trace)

    async def fetch(self, request: HttpRequest) -> HttpResponse:
        return await fetch(self._client, request, self._deadline_s)
