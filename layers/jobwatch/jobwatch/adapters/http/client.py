"""The poller's HTTP client and one bounded request.

Every upstream answer is bounded whatever the upstream sends (docs/decisions.md, D26): a total
deadline over connect, headers and the whole body (`upstream_deadline_s`, a slow drip included), a
cap on the decoded body (`upstream_max_body_bytes`, a compression bomb included), and the JSON depth
cap of the sources. Credentials this request carried that the upstream echoes back (some proxies
and gateways do) are redacted from the body before anything parses, stores, logs or notifies it.
"""

from __future__ import annotations

import asyncio
import functools
import json
import math
import ssl
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

from jobwatch.adapters.http.aio_transport import AiohttpTransport, LeanAsyncClient, ResponseTooLarge
from jobwatch.domain.endpoints import EndpointPolicy
from jobwatch.domain.errors import PollError, PollErrorKind
from jobwatch.domain.text import REDACTED
from jobwatch.settings import UpstreamSettings
from jobwatch.sources.base import HttpRequest, HttpResponse

USER_AGENT = "jobwatch/0.1 (+status poller)"
CREDENTIAL_HEADERS = ("authorization", "api-key", "x-api-key")
"""Request headers whose values are secrets (the sources put API keys only there)."""
MIN_SECRET_CHARS = 6
"""Shorter credential parts are not searched for: redacting `Bearer` or `abc` would garble answers."""


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """Loading the CA bundle costs ~20 ms; every client of the process shares one context."""
    return httpx.create_ssl_context()


def make_http_client(settings: UpstreamSettings, max_connections: int) -> httpx.AsyncClient:
    """An httpx client over one aiohttp pool: `max_connections` in all, `endpoint_concurrency` per
    host, timeouts per phase, no redirects, the endpoint rules on every new connection."""
    transport = AiohttpTransport(
        ssl_context=_tls_context(),
        max_connections=max_connections,
        max_connections_per_host=min(max_connections, settings.endpoint_concurrency),
        max_body_bytes=settings.upstream_max_body_bytes,
        guard=EndpointPolicy.from_settings(settings).refusal,
    )
    return LeanAsyncClient(
        transport=transport,
        timeout=httpx.Timeout(
            connect=settings.connect_timeout_s,
            read=settings.read_timeout_s,
            write=settings.read_timeout_s,
            pool=settings.read_timeout_s,
        ),
        follow_redirects=False,
        headers={"User-Agent": USER_AGENT},
    )


@functools.lru_cache(maxsize=16_384)
def parsed_url(url: str) -> httpx.URL:
    """A job's status URL parsed once per process, not once per poll: httpx's parser was 7 % of a
    quiet cycle's CPU. URLs are immutable; the cache holds one poll worker's shard (D44)."""
    return httpx.URL(url)


async def fetch(client: httpx.AsyncClient, request: HttpRequest, deadline_s: float) -> HttpResponse:
    """Send one request and read its whole answer within `deadline_s`; every failure is a PollError
    that names its cause (TIMEOUT, TOO_SLOW, TOO_LARGE, CONNECTION)."""
    try:
        async with asyncio.timeout(deadline_s):
            response = await client.request(
                request.method,
                parsed_url(request.url),
                params=request.params,
                headers=request.headers,
                json=request.json,
            )
    except TimeoutError:
        raise PollError(PollErrorKind.TOO_SLOW, f"no complete answer within {deadline_s:g} s") from None
    except ResponseTooLarge as exc:
        raise PollError(PollErrorKind.TOO_LARGE, str(exc)) from None
    except httpx.TimeoutException as exc:
        raise PollError(PollErrorKind.TIMEOUT, f"no answer in time ({type(exc).__name__})") from None
    except httpx.HTTPError as exc:
        raise PollError(PollErrorKind.CONNECTION, f"{type(exc).__name__}: {exc}") from None
    headers = {"content-type": response.headers.get("content-type", "")}
    retry_after = response.headers.get("retry-after")
    if retry_after is not None:
        headers["retry-after"] = retry_after_in_seconds(retry_after, response.headers.get("date"))
    body = redact(response.content, credentials(request.headers))
    return HttpResponse(status_code=response.status_code, body=body, headers=headers)


def credentials(headers: dict[str, str]) -> tuple[str, ...]:
    """The secret values a request carried: whole credential headers, and the token after a scheme."""
    found: list[str] = []
    for name, value in headers.items():
        if name.lower() not in CREDENTIAL_HEADERS:
            continue
        found.append(value)
        _, _, token = value.partition(" ")
        if token:
            found.append(token)
            if ":" in token:  # user:password (Milvus) echoed as either part
                found.extend(token.split(":", 1))
    return tuple(sorted({s for s in found if len(s) >= MIN_SECRET_CHARS}, key=len, reverse=True))


@functools.lru_cache(maxsize=256)
def _forms(secret: str) -> tuple[bytes, ...]:
    """The byte forms a reflected secret can take in a body: as sent, and JSON-escaped."""
    escaped = json.dumps(secret)[1:-1]
    forms = {secret.encode("utf-8", "surrogatepass"), escaped.encode("utf-8", "surrogatepass")}
    return tuple(sorted(forms, key=len, reverse=True))


def redact(body: bytes, secrets: tuple[str, ...]) -> bytes:
    """`body` with every occurrence of a secret replaced by the redaction marker."""
    marker = REDACTED.encode()
    for secret in secrets:
        for form in _forms(secret):
            if form in body:
                body = body.replace(form, marker)
    return body


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
