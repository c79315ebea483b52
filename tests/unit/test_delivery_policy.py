"""Pure parts of the notifier's retry and deferral policies for Slack and e-mail (no sockets)."""

from __future__ import annotations

from typing import Any

from jobwatch.delivery.engine import SQS_MAX_DELAY_S, retry_delay_s, retry_window_s
from jobwatch.delivery.records import BatchReport, number_attribute, record_from_message, string_attribute
from jobwatch.settings import NotifierSettings

NOTIFIER_REQUIRED = {"table": "t", "notify_queue_url": "q", "notify_dlq_url": "dlq", "email_topic_arn": "arn"}


def _slack_window(**overrides: Any) -> float:
    settings = NotifierSettings.model_validate({**NOTIFIER_REQUIRED, **overrides})
    return retry_window_s(settings.delivery_max_attempts, settings.delivery_retry_base_s)


def test_retry_delays_double_from_the_base_and_stop_at_sqs_longest_delay() -> None:
    assert [retry_delay_s(a, 30) for a in range(1, 9)] == [30, 60, 120, 240, 480, 900, 900, 900]
    assert retry_delay_s(10_000, 30) == SQS_MAX_DELAY_S  # no overflow for absurd attempt numbers


def test_the_retry_window_sums_the_delays_between_attempts() -> None:
    assert _slack_window() == 30 + 60 + 120 + 240 + 480 + 24 * 900  # 30 attempts, 29 waits
    assert _slack_window(delivery_max_attempts=8) == 30 + 60 + 120 + 240 + 480 + 900 + 900
    assert _slack_window(delivery_max_attempts=1) == 0


def _record(**attributes: Any) -> dict[str, Any]:
    return {"messageAttributes": {k: {"stringValue": v, "dataType": "Number"} for k, v in attributes.items()}}


def test_message_attributes_that_are_missing_or_garbled_read_as_absent() -> None:
    assert number_attribute(_record(jobwatchDeferrals="3"), "jobwatchDeferrals") == 3.0
    for garbled in ("", "nan", "inf", "three", None):
        assert number_attribute(_record(jobwatchDeferrals=garbled), "jobwatchDeferrals") is None
    assert number_attribute({}, "jobwatchDeferrals") is None
    assert number_attribute({"messageAttributes": None}, "jobwatchDeferrals") is None
    assert string_attribute(_record(jobwatchCopy="ab12"), "jobwatchCopy") == "ab12"
    assert string_attribute(_record(jobwatchCopy=""), "jobwatchCopy") is None


def test_a_received_message_becomes_a_lambda_record_with_its_attributes() -> None:
    message = {
        "MessageId": "m-1",
        "ReceiptHandle": "r-1",
        "Body": "{}",
        "Attributes": {"ApproximateReceiveCount": "2"},
        "MessageAttributes": {"jobwatchAttempts": {"StringValue": "2", "DataType": "Number"}},
    }
    record = record_from_message(message)
    assert record["messageId"] == "m-1" and record["receiptHandle"] == "r-1" and record["body"] == "{}"
    assert record["messageAttributes"] == {"jobwatchAttempts": {"stringValue": "2", "dataType": "Number"}}
    assert number_attribute(record, "jobwatchAttempts") == 2.0


def test_batch_reports_add_up_every_counter() -> None:
    total = BatchReport(delivered=1, deferred=2, failures=["a"])
    total.add(BatchReport(delivered=2, collapsed=1, order_waits_expired=1, retried=3, failures=["b"]))
    assert (total.delivered, total.deferred, total.collapsed, total.order_waits_expired, total.retried) == (
        3,
        2,
        1,
        1,
        3,
    )
    assert total.failures == ["a", "b"]


def test_email_retries_back_off_like_slack_and_are_capped() -> None:
    settings = NotifierSettings.model_validate(NOTIFIER_REQUIRED)
    base = settings.email_retry_base_s
    assert [retry_delay_s(n, base) for n in (1, 2, 3, 6, 10, 40)] == [30, 60, 120, 900, 900, 900]
    # Ten attempts (`email_max_attempts`) span about 1 h 15 min of SNS trouble.
    assert settings.email_max_attempts == 10
    assert retry_window_s(settings.email_max_attempts, base) == 4530
