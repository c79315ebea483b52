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


def test_the_schedule_period_comes_in_minutes_from_the_template() -> None:
    assert Settings.from_env({"JOBWATCH_POLL_PERIOD_MINUTES": "5"}).poll_period_s == 300.0
    assert Settings.from_env({"JOBWATCH_POLL_PERIOD_S": "90"}).poll_period_s == 90.0
    assert Settings.from_env({}).poll_period_s == 60.0
    both = {"JOBWATCH_POLL_PERIOD_MINUTES": "1", "JOBWATCH_POLL_PERIOD_S": "4"}
    assert Settings.from_env(both).poll_period_s == 4.0  # explicit seconds win (compressed time)
    with pytest.raises(ValidationError, match="not a number of minutes"):
        Settings.from_env({"JOBWATCH_POLL_PERIOD_MINUTES": "five"})


def test_bad_setting_is_a_clear_error() -> None:
    with pytest.raises(ValidationError, match="poll_concurrency"):
        Settings.from_env({"JOBWATCH_POLL_CONCURRENCY": "0"})


def test_secret_value_forms() -> None:
    assert extract_value("  sk-123 ") == "sk-123"
    assert extract_value('{"apiKey": "sk-1"}') == "sk-1"
    assert extract_value('{"url": "https://hooks.slack.com/services/T/B/X"}').startswith("https://hooks")
    with pytest.raises(SecretUnavailableError, match="none of the keys"):
        extract_value('{"password": "x"}')
