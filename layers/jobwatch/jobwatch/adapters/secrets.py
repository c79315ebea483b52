"""Secrets Manager access with a short in-process cache. Values are never logged; names are."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from jobwatch.ports import SecretUnavailableError

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager.client import SecretsManagerClient

# Keys accepted when a secret holds a JSON object instead of the bare value.
_VALUE_KEYS = ("apiKey", "api_key", "token", "key", "url", "webhookUrl", "webhook_url")


def extract_value(raw: str) -> str:
    """A secret is either the bare value or a JSON object with one of the usual keys."""
    text = raw.strip()
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except ValueError:
            return text
        if isinstance(data, dict):
            for key in _VALUE_KEYS:
                value = data.get(key)
                if isinstance(value, str) and value:
                    return value
            raise SecretUnavailableError(f"JSON secret has none of the keys {', '.join(_VALUE_KEYS)}")
    return text


class SecretResolver:
    def __init__(self, client: SecretsManagerClient, ttl_s: float = 300.0) -> None:
        self._client = client
        self._ttl_s = ttl_s
        self._cache: dict[str, tuple[float, str]] = {}

    def get(self, name: str) -> str:
        cached = self._cache.get(name)
        now = time.monotonic()
        if cached is not None and now - cached[0] < self._ttl_s:
            return cached[1]
        try:
            response = self._client.get_secret_value(SecretId=name)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "ClientError")
            raise SecretUnavailableError(f"secret {name!r} unavailable: {code}") from None
        except BotoCoreError as exc:
            raise SecretUnavailableError(f"secret {name!r} unavailable: {type(exc).__name__}") from None
        raw = response.get("SecretString")
        if not raw:
            raise SecretUnavailableError(f"secret {name!r} has no SecretString")
        try:
            value = extract_value(raw)
        except SecretUnavailableError as exc:
            raise SecretUnavailableError(f"secret {name!r}: {exc}") from None
        self._cache[name] = (now, value)
        return value


class SecretsManagerNames:
    """`ports.SecretNames` on Secrets Manager: DescribeSecret returns metadata, never the value, so
    the function that checks names (the API) needs no right to read any secret."""

    def __init__(self, client: SecretsManagerClient) -> None:
        self._client = client

    def exists(self, name: str) -> bool:
        try:
            self._client.describe_secret(SecretId=name)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                return False
            raise
        return True
