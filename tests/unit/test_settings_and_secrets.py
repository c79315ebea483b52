"""Settings come from JOBWATCH_* variables, one model per function; secrets accept a bare value or a
JSON object."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from jobwatch.adapters.secrets import extract_value
from jobwatch.ports import SecretUnavailableError
from jobwatch.settings import (
    ApiSettings,
    EndpointSettings,
    EnvSettings,
    NotifierSettings,
    PollerSettings,
    SettingsError,
    SlackInteractionSettings,
    UpstreamSettings,
    load_settings,
)

REQUIRED: dict[type[EnvSettings], dict[str, str]] = {
    PollerSettings: {
        "JOBWATCH_TABLE": "jobwatch",
        "JOBWATCH_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:transitions",
    },
    NotifierSettings: {
        "JOBWATCH_TABLE": "jobwatch",
        "JOBWATCH_EMAIL_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:alert-email",
        "JOBWATCH_NOTIFY_QUEUE_URL": "https://sqs.example/notify",
        "JOBWATCH_NOTIFY_DLQ_URL": "https://sqs.example/notify-dlq",
    },
    ApiSettings: {
        "JOBWATCH_TABLE": "jobwatch",
        "JOBWATCH_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:transitions",
    },
    SlackInteractionSettings: {
        "JOBWATCH_TABLE": "jobwatch",
        "JOBWATCH_SLACK_SIGNING_SECRET": "jobwatch-slack/signing-secret",
    },
}
"""What each function cannot start without, with a plausible value."""

MISSING = [(kind, name) for kind, required in REQUIRED.items() for name in required]


@pytest.fixture
def _fresh_settings_cache() -> Iterator[None]:
    load_settings.cache_clear()
    yield
    load_settings.cache_clear()


# -- required variables --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(REQUIRED), ids=lambda kind: kind.__name__)
def test_the_required_variables_are_exactly_the_listed_ones(kind: type[EnvSettings]) -> None:
    required = {"JOBWATCH_" + name.upper() for name, f in kind.model_fields.items() if f.is_required()}
    assert required == set(REQUIRED[kind])
    assert kind.from_env(REQUIRED[kind]) is not None


@pytest.mark.parametrize(
    ("kind", "variable"), MISSING, ids=[f"{kind.__name__}-{name}" for kind, name in MISSING]
)
@pytest.mark.parametrize("how", ["absent", "empty"])
def test_a_missing_required_variable_is_one_line_naming_it(
    kind: type[EnvSettings], variable: str, how: str
) -> None:
    env = dict(REQUIRED[kind])
    if how == "absent":
        del env[variable]
    else:
        env[variable] = ""  # an empty value is as good as none (a template parameter left blank)
    with pytest.raises(SettingsError) as caught:
        kind.from_env(env)
    message = str(caught.value)
    assert variable in message
    assert message.startswith(f"{variable} is not set")
    assert "\n" not in message


def test_only_the_first_of_several_missing_variables_is_named_on_its_one_line() -> None:
    with pytest.raises(SettingsError) as caught:
        NotifierSettings.from_env({})
    message = str(caught.value)
    assert "\n" not in message
    assert sum(name in message for name in REQUIRED[NotifierSettings]) == 1


def test_settings_that_poll_or_check_need_no_variable() -> None:
    """`jobwatch check` touches no AWS: the upstream and endpoint settings all have defaults."""
    assert UpstreamSettings.from_env({}).read_timeout_s == 10.0
    assert EndpointSettings.from_env({}).endpoint_allowlist == ()


# -- optional variables and their defaults ------------------------------------------------------------


def test_poller_defaults() -> None:
    s = PollerSettings.from_env(REQUIRED[PollerSettings])
    assert (s.table, s.retention_days, s.secret_cache_s) == ("jobwatch", 30, 300.0)
    assert (s.poll_concurrency, s.deadline_margin_s, s.poll_period_s, s.adaptive_polling) == (
        64,
        15.0,
        60.0,
        True,
    )
    assert (s.unreachable_after, s.lost_after, s.stall_after_s, s.max_duration_s) == (3, 3, 1800.0, 86400.0)
    assert (s.connect_timeout_s, s.read_timeout_s, s.endpoint_concurrency, s.endpoint_max_rps) == (
        3.0,
        10.0,
        16,
        None,
    )
    assert (s.upstream_retry_after_max_s, s.upstream_retry_wait_s) == (3600.0, 5.0)
    assert (s.allow_http_loopback, s.endpoint_allowlist) == (False, ())


def test_notifier_defaults() -> None:
    s = NotifierSettings.from_env(REQUIRED[NotifierSettings])
    assert (s.retention_days, s.secret_cache_s, s.routes_cache_s) == (30, 300.0, 30.0)
    assert (s.slack_webhook_secret, s.slack_api_url, s.alert_email_events) == (
        None,
        None,
        ("FAILED", "CANCELED"),
    )
    assert (s.slack_min_interval_s, s.delivery_max_retry_after_s) == (1.0, 5.0)
    assert (s.delivery_max_attempts, s.delivery_retry_base_s) == (30, 30.0)
    assert (s.delivery_order_wait_s, s.delivery_order_retry_s) == (3600.0, 5.0)
    assert (s.email_max_attempts, s.email_retry_base_s) == (10, 30.0)


def test_the_delivery_settings_are_still_read_under_their_former_slack_names() -> None:
    env = {
        **REQUIRED[NotifierSettings],
        "JOBWATCH_SLACK_MAX_ATTEMPTS": "7",
        "JOBWATCH_SLACK_ORDER_WAIT_S": "60",
    }
    s = NotifierSettings.from_env(env)
    assert (s.delivery_max_attempts, s.delivery_order_wait_s, s.delivery_retry_base_s) == (7, 60.0, 30.0)
    both = {**env, "JOBWATCH_DELIVERY_MAX_ATTEMPTS": "9"}  # the new name wins over the old one
    assert NotifierSettings.from_env(both).delivery_max_attempts == 9
    with pytest.raises(SettingsError, match="JOBWATCH_DELIVERY_MAX_ATTEMPTS is invalid"):
        NotifierSettings.from_env({**REQUIRED[NotifierSettings], "JOBWATCH_SLACK_MAX_ATTEMPTS": "0"})


def test_api_defaults() -> None:
    s = ApiSettings.from_env(REQUIRED[ApiSettings])
    assert (s.retention_days, s.allow_http_loopback, s.endpoint_allowlist) == (30, False, ())


def test_settings_from_env() -> None:
    s = PollerSettings.from_env(
        {
            **REQUIRED[PollerSettings],
            "JOBWATCH_POLL_CONCURRENCY": "8",
            "JOBWATCH_ALLOW_HTTP_LOOPBACK": "true",
            "OTHER": "x",
        }
    )
    assert (s.table, s.poll_concurrency, s.allow_http_loopback) == ("jobwatch", 8, True)


def test_a_function_ignores_the_other_functions_variables() -> None:
    """One environment can hold every function's variables (a local stack): each reads its own."""
    everything = {name: value for required in REQUIRED.values() for name, value in required.items()}
    everything["JOBWATCH_DELIVERY_MAX_ATTEMPTS"] = "not even a number"  # the notifier's, not the others'
    assert PollerSettings.from_env(everything).topic_arn == REQUIRED[PollerSettings]["JOBWATCH_TOPIC_ARN"]
    assert ApiSettings.from_env(everything).retention_days == 30
    del everything["JOBWATCH_DELIVERY_MAX_ATTEMPTS"]
    everything["JOBWATCH_POLL_CONCURRENCY"] = "many"  # the poller's
    assert NotifierSettings.from_env(everything).email_max_attempts == 10


def test_settings_are_frozen() -> None:
    s = PollerSettings.from_env(REQUIRED[PollerSettings])
    with pytest.raises(ValueError, match="frozen"):
        s.poll_concurrency = 1  # type: ignore[misc]


# -- the poll period ----------------------------------------------------------------------------------


def test_the_schedule_period_comes_in_minutes_from_the_template() -> None:
    base = REQUIRED[PollerSettings]
    assert PollerSettings.from_env({**base, "JOBWATCH_POLL_PERIOD_MINUTES": "5"}).poll_period_s == 300.0
    assert PollerSettings.from_env({**base, "JOBWATCH_POLL_PERIOD_S": "90"}).poll_period_s == 90.0
    assert PollerSettings.from_env(base).poll_period_s == 60.0
    both = {**base, "JOBWATCH_POLL_PERIOD_MINUTES": "1", "JOBWATCH_POLL_PERIOD_S": "4"}
    assert PollerSettings.from_env(both).poll_period_s == 4.0  # explicit seconds win (compressed time)
    with pytest.raises(SettingsError, match="not a number of minutes") as caught:
        PollerSettings.from_env({**base, "JOBWATCH_POLL_PERIOD_MINUTES": "five"})
    assert "\n" not in str(caught.value)


# -- invalid values -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "variable", "value"),
    [
        (PollerSettings, "JOBWATCH_POLL_CONCURRENCY", "0"),
        (PollerSettings, "JOBWATCH_READ_TIMEOUT_S", "soon"),
        (NotifierSettings, "JOBWATCH_DELIVERY_MAX_ATTEMPTS", "0"),
        (NotifierSettings, "JOBWATCH_EMAIL_RETRY_BASE_S", "0.5"),
        (ApiSettings, "JOBWATCH_RETENTION_DAYS", "0"),
    ],
)
def test_bad_setting_is_a_clear_error(kind: type[EnvSettings], variable: str, value: str) -> None:
    with pytest.raises(SettingsError) as caught:
        kind.from_env({**REQUIRED[kind], variable: value})
    message = str(caught.value)
    assert message.startswith(f"{variable} is invalid")
    assert "\n" not in message


# -- the endpoint allow-list --------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [EndpointSettings, UpstreamSettings, PollerSettings, ApiSettings])
def test_the_allow_list_is_comma_separated_cidrs_and_hostnames(kind: type[EndpointSettings]) -> None:
    env = {
        **REQUIRED.get(kind, {}),
        "JOBWATCH_ENDPOINT_ALLOWLIST": " 10.0.0.0/8, Milvus.Internal.Example.COM. ,,fd00::/8,192.168.1.7",
    }
    assert kind.from_env(env).endpoint_allowlist == (
        "10.0.0.0/8",
        "milvus.internal.example.com",
        "fd00::/8",
        "192.168.1.7",
    )


@pytest.mark.parametrize("kind", [EndpointSettings, PollerSettings, ApiSettings])
@pytest.mark.parametrize("entry", ["not a host!", "http://milvus.internal", "-leading.example.com", "a..b"])
def test_an_allow_list_entry_that_is_neither_a_cidr_nor_a_hostname_is_refused(
    kind: type[EndpointSettings], entry: str
) -> None:
    env = {**REQUIRED.get(kind, {}), "JOBWATCH_ENDPOINT_ALLOWLIST": f"10.0.0.0/8,{entry}"}
    with pytest.raises(SettingsError) as caught:
        kind.from_env(env)
    message = str(caught.value)
    assert message.startswith("JOBWATCH_ENDPOINT_ALLOWLIST is invalid")
    assert "neither a CIDR nor a hostname" in message
    assert "\n" not in message


# -- once per process ---------------------------------------------------------------------------------


@pytest.mark.usefixtures("_fresh_settings_cache")
def test_load_settings_reads_the_environment_once_per_kind(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in REQUIRED[PollerSettings].items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("JOBWATCH_POLL_CONCURRENCY", "8")
    first = load_settings(PollerSettings)
    monkeypatch.setenv("JOBWATCH_POLL_CONCURRENCY", "9")
    assert load_settings(PollerSettings) is first
    assert load_settings(ApiSettings).topic_arn == first.topic_arn  # one cache entry per kind
    load_settings.cache_clear()
    assert load_settings(PollerSettings).poll_concurrency == 9


@pytest.mark.usefixtures("_fresh_settings_cache")
def test_load_settings_fails_again_until_the_variable_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in REQUIRED[NotifierSettings]:
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(SettingsError, match="JOBWATCH_"):
        load_settings(NotifierSettings)
    for name, value in REQUIRED[NotifierSettings].items():
        monkeypatch.setenv(name, value)
    assert load_settings(NotifierSettings).email_max_attempts == 10  # a failure is not cached


# -- secrets ------------------------------------------------------------------------------------------


def test_secret_value_forms() -> None:
    assert extract_value("  sk-123 ") == "sk-123"
    assert extract_value('{"apiKey": "sk-1"}') == "sk-1"
    assert extract_value('{"url": "https://hooks.slack.com/services/T/B/X"}').startswith("https://hooks")
    with pytest.raises(SecretUnavailableError, match="none of the keys"):
        extract_value('{"password": "x"}')


def test_slack_interaction_defaults_and_response_url_prefixes() -> None:
    s = SlackInteractionSettings.from_env(REQUIRED[SlackInteractionSettings])
    assert (s.slack_response_url_prefix, s.slack_response_timeout_s) == ("https://hooks.slack.com/", 1.5)
    local = {
        **REQUIRED[SlackInteractionSettings],
        "JOBWATCH_SLACK_RESPONSE_URL_PREFIX": "http://127.0.0.1:9100/",
    }
    assert SlackInteractionSettings.from_env(local).slack_response_url_prefix == "http://127.0.0.1:9100/"
    for prefix in (
        "http://hooks.slack.com/",
        "https://hooks.slack.com",
        "ftp://x/",
        "http://10.0.0.1/",
        "/x/",
    ):
        bad = {**REQUIRED[SlackInteractionSettings], "JOBWATCH_SLACK_RESPONSE_URL_PREFIX": prefix}
        with pytest.raises(SettingsError, match="JOBWATCH_SLACK_RESPONSE_URL_PREFIX is invalid"):
            SlackInteractionSettings.from_env(bad)
