"""Settings come from JOBWATCH_* variables once; secrets accept a bare value or a JSON object."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from jobwatch.adapters.secrets import SecretUnavailableError, extract_value
from jobwatch.settings import Settings


def test_settings_from_env() -> None:
    s = Settings.from_env(
        {
            "JOBWATCH_TABLE": "t",
            "JOBWATCH_POLL_CONCURRENCY": "8",
            "JOBWATCH_ALLOW_HTTP_LOOPBACK": "true",
            "OTHER": "x",
        }
    )
    assert (s.table, s.poll_concurrency, s.allow_http_loopback) == ("t", 8, True)
    assert Settings.from_env({}).poll_concurrency == 64


def test_bad_setting_is_a_clear_error() -> None:
    with pytest.raises(ValidationError, match="poll_concurrency"):
        Settings.from_env({"JOBWATCH_POLL_CONCURRENCY": "0"})


def test_secret_value_forms() -> None:
    assert extract_value("  sk-123 ") == "sk-123"
    assert extract_value('{"apiKey": "sk-1"}') == "sk-1"
    assert extract_value('{"url": "https://hooks.slack.com/services/T/B/X"}').startswith("https://hooks")
    with pytest.raises(SecretUnavailableError, match="none of the keys"):
        extract_value('{"password": "x"}')
