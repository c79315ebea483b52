"""The poller's HTTP clients: httpx over the asyncio backend, bounded pools, timeouts, no redirects,
the endpoint rules on every connection, and one request sent with transport failures named.
"""

from __future__ import annotations

import functools
import math
import ssl
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

from jobwatch.adapters.http.aio_network import asyncio_transport
from jobwatch.domain.errors import PollError, PollErrorKind
from jobwatch.settings import UpstreamSettings
from jobwatch.sources.base import HttpRequest, HttpResponse

USER_AGENT = "jobwatch/0.1 (+status poller)"


CONNECTIONS_PER_LANE = 8
"""httpcore's pool scans every connection (with a socket syscall each) for every queued request;
its cost grows with pool size squared (encode/httpcore#1035). Lanes of 8 keep it flat."""


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """Loading the CA bundle costs ~20 ms; every client of the process shares one context."""
    return httpx.create_ssl_context()


def make_http_client(settings: UpstreamSettings, concurrency: int) -> httpx.AsyncClient:
    """An httpx client with bounded pool, timeouts and keep-alive; no redirects, and the endpoint
    rules applied again to every address it connects to (registration checked them once)."""
    from jobwatch.domain.endpoints import EndpointPolicy

    guard = EndpointPolicy.from_settings(settings).refusal
    return httpx.AsyncClient(
        transport=asyncio_transport(ssl_context=_tls_context(), max_connections=concurrency, guard=guard),
        timeout=httpx.Timeout(
            connect=settings.connect_timeout_s,
            read=settings.read_timeout_s,
            write=settings.read_timeout_s,
            pool=settings.read_timeout_s,
        ),
        follow_redirects=False,
        headers={"User-Agent": USER_AGENT},
    )


async def fetch(client: httpx.AsyncClient, request: HttpRequest) -> HttpResponse:
    """Send one request; transport failures become PollErrors that name the cause."""
    try:
        response = await client.request(
            request.method, request.url, params=request.params, headers=request.headers, json=request.json
        )
    except httpx.TimeoutException as exc:
        raise PollError(PollErrorKind.TIMEOUT, f"no answer in time ({type(exc).__name__})") from None
    except httpx.HTTPError as exc:
        raise PollError(PollErrorKind.CONNECTION, f"{type(exc).__name__}: {exc}") from None
    headers = {"content-type": response.headers.get("content-type", "")}
    retry_after = response.headers.get("retry-after")
    if retry_after is not None:
        headers["retry-after"] = retry_after_in_seconds(retry_after, response.headers.get("date"))
    return HttpResponse(status_code=response.status_code, body=response.content, headers=headers)


def retry_after_in_seconds(value: str, server_date: str | None) -> str:
    """`Retry-After` may be an HTTP date; sources see seconds. The server's own `Date` is the
    reference when it sent one, so a skewed clock on either side does not stretch the wait."""
    value = value.strip()
    if value.isdigit():
        return value
    try:
        until = parsedate_to_datetime(value)
        reference = parsedate_to_datetime(server_date) if server_date else datetime.now(UTC)
        return str(max(0, math.ceil((until - reference).total_seconds())))
    except (TypeError, ValueError, OverflowError):
        return value  # not a date either: the source reports it as unknown
