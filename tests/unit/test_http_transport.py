"""The pieces of the poller's HTTP adapter that need no socket: redaction, credential discovery,
error mapping, and the one private httpx attribute the lean client relies on."""

from __future__ import annotations

import asyncio
import ipaddress

import aiohttp
import httpx
import pytest

from jobwatch.adapters.http import aio_transport
from jobwatch.adapters.http.aio_transport import (
    GuardedResolver,
    LeanAsyncClient,
    RefusedAddress,
    _httpx_error,
)
from jobwatch.adapters.http.client import credentials, redact
from jobwatch.domain.endpoints import EndpointPolicy
from jobwatch.domain.text import REDACTED


def test_credentials_are_the_secret_headers_and_their_tokens() -> None:
    found = credentials({"Authorization": "Bearer sk-abcdef123", "Accept": "application/json"})
    assert found == ("Bearer sk-abcdef123", "sk-abcdef123")
    assert set(credentials({"Authorization": "Bearer root:Milvus123"})) >= {"root:Milvus123", "Milvus123"}
    assert credentials({"Api-Key": "pc-0123456789"}) == ("pc-0123456789",)
    assert credentials({"Authorization": "Bearer ab"}) == (
        "Bearer ab",
    )  # a 2-character token alone is not hunted


def test_redaction_replaces_every_form_of_a_reflected_secret() -> None:
    secret = 'sk-live/0123"456'
    body = b'{"error": "bad key sk-live/0123\\"456", "raw": "sk-live/0123"456"}'
    redacted = redact(body, (secret,))
    assert b"sk-live" not in redacted
    assert redacted.count(REDACTED.encode()) == 2
    assert redact(b"nothing here", (secret,)) == b"nothing here"


def test_lean_client_keeps_cookies_only_when_a_response_sets_one() -> None:
    client = LeanAsyncClient()
    assert hasattr(client, "_cookies"), "the pinned httpx still keeps cookies in AsyncClient._cookies"
    request = httpx.Request("GET", "https://example.com/")
    client._cookies.extract_cookies(httpx.Response(200, request=request))
    assert len(client.cookies.jar) == 0
    client._cookies.extract_cookies(httpx.Response(200, headers={"Set-Cookie": "a=b"}, request=request))
    assert len(client.cookies.jar) == 1


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (aiohttp.ConnectionTimeoutError(), httpx.ConnectTimeout),
        (aiohttp.SocketTimeoutError(), httpx.ReadTimeout),
        (TimeoutError(), httpx.ReadTimeout),
        (aiohttp.ServerDisconnectedError(), httpx.RemoteProtocolError),
        (aiohttp.ClientPayloadError("truncated"), httpx.RemoteProtocolError),
        (aiohttp.ClientPayloadError("Can not decode content-encoding: gzip"), httpx.DecodingError),
        (aiohttp.ClientOSError(), httpx.ReadError),
    ],
)
def test_aiohttp_failures_arrive_as_the_httpx_errors_the_poller_classifies(
    error: aiohttp.ClientError | TimeoutError, expected: type[httpx.HTTPError]
) -> None:
    assert _httpx_error(error) is expected


def test_the_resolver_refuses_a_name_that_resolves_to_an_internal_address(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def to_metadata(host: str, port: int) -> list[str]:
        return ["93.184.215.14", "169.254.169.254"]

    monkeypatch.setattr(aio_transport, "CONNECT_RESOLVER", to_metadata)
    resolver = GuardedResolver(EndpointPolicy().refusal)
    with pytest.raises(RefusedAddress, match=r"169\.254\.169\.254, a link-local address"):
        asyncio.run(resolver.resolve("upstream.example.com", 443))


def test_the_resolver_hands_back_every_checked_address(monkeypatch: pytest.MonkeyPatch) -> None:
    async def public(host: str, port: int) -> list[str]:
        return ["93.184.215.14", "2606:2800:220:1::"]

    monkeypatch.setattr(aio_transport, "CONNECT_RESOLVER", public)
    results = asyncio.run(GuardedResolver(EndpointPolicy().refusal).resolve("upstream.example.com", 443))
    assert [ipaddress.ip_address(r["host"]).version for r in results] == [4, 6]
    assert {r["port"] for r in results} == {443}
