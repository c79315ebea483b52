"""The webhook channel's poster: one POST over the poller's guarded aiohttp transport.

A webhook URL is user input that becomes an outbound request from inside AWS, exactly like a job
endpoint, so it gets the same treatment (docs/decisions.md, D11, D19, D27): https only (plain http
only to a loopback name, behind JOBWATCH_ALLOW_HTTP_LOOPBACK), every address of every new connection
put to the endpoint rules (a name re-pointed at 169.254.169.254 or 10.x is refused before a byte is
sent), no redirects, a cap on the answer's body, and a total deadline over connect, headers and body.

`post` is synchronous: each call runs on an event loop of its own and closes its connection pool
before returning, so the senders (plain Lambda handlers) need no async code and nothing outlives a
call. A webhook is one request per transition; keep-alive across posts is not worth a pool that
outlives the event loop it was made on. Failures are raised as `httpx.HTTPError` (refusals by the
endpoint rules as `httpx.ConnectError`, the deadline as `httpx.ReadTimeout`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from urllib.parse import urlsplit

import httpx

from jobwatch.adapters.http.aio_transport import AiohttpTransport, LeanAsyncClient
from jobwatch.adapters.http.client import _tls_context
from jobwatch.domain.endpoints import EndpointPolicy, is_loopback_name
from jobwatch.settings import EndpointSettings

USER_AGENT = "jobwatch/0.1 (+webhook)"
DEADLINE_S = 10.0
"""Connect, send, headers and the whole answer: a receiver that takes longer is retried later."""
CONNECT_TIMEOUT_S = 3.0
MAX_ANSWER_BYTES = 1_048_576
"""Only the status and a few bytes of the answer are used; a receiver that sends more is broken."""


class RefusedWebhookUrl(httpx.ConnectError):
    """The URL itself breaks the endpoint rules (scheme, credentials, no host): nothing was sent."""


class WebhookPoster:
    """`channels.webhook.Poster` on the guarded aiohttp transport."""

    def __init__(
        self,
        settings: EndpointSettings,
        *,
        deadline_s: float = DEADLINE_S,
        max_answer_bytes: int = MAX_ANSWER_BYTES,
    ) -> None:
        self._policy = EndpointPolicy.from_settings(settings)
        self._deadline_s = deadline_s
        self._max_answer_bytes = max_answer_bytes

    def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> httpx.Response:
        """POST `body` to `url` and return the whole (capped) answer, or raise `httpx.HTTPError`."""
        self.check_url(url)
        return asyncio.run(self._post(url, body, headers))

    def check_url(self, url: str) -> None:
        """The rules a URL can break before any resolution (addresses are checked per connection)."""
        try:
            parts = urlsplit(url)
            host = (parts.hostname or "").lower()
        except ValueError:
            raise RefusedWebhookUrl(f"refused by the endpoint rules: {url!r} is not a valid URL") from None
        if not host or parts.username or parts.password:
            raise RefusedWebhookUrl(
                "refused by the endpoint rules: a webhook URL needs a host and no credentials"
            )
        if parts.scheme == "https":
            return
        if parts.scheme == "http" and self._policy.allow_http_loopback and is_loopback_name(host):
            return
        raise RefusedWebhookUrl(
            f"refused by the endpoint rules: {parts.scheme}://{host} (https only; plain http only to "
            "loopback, with JOBWATCH_ALLOW_HTTP_LOOPBACK=true)"
        )

    async def _post(self, url: str, body: bytes, headers: Mapping[str, str]) -> httpx.Response:
        transport = AiohttpTransport(
            ssl_context=_tls_context(),
            max_connections=1,
            max_connections_per_host=1,
            max_body_bytes=self._max_answer_bytes,
            guard=self._policy.refusal,
        )
        timeout = httpx.Timeout(self._deadline_s, connect=min(CONNECT_TIMEOUT_S, self._deadline_s))
        async with LeanAsyncClient(
            transport=transport,
            timeout=timeout,
            follow_redirects=False,
            headers={"User-Agent": USER_AGENT},
        ) as client:
            try:
                async with asyncio.timeout(self._deadline_s):
                    return await client.post(url, content=body, headers=dict(headers))
            except TimeoutError:
                raise httpx.ReadTimeout(f"no complete answer within {self._deadline_s:g} s") from None
