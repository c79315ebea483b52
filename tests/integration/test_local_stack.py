"""`create_local_stack` against a real moto server: the template's resources, idempotently."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from jobwatch_tools.local_stack import create_local_stack, load_template, render_exports

pytestmark = pytest.mark.integration

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"
WEBHOOK = "https://hooks.slack.com/services/TEST/LOCAL/webhook-for-tests"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = (tmp_path_factory.mktemp("moto") / "server.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{url}/moto-api/", timeout=1):  # noqa: S310 - local URL
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"moto server did not start on {url}") from None
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@pytest.fixture
def endpoint(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh moto state and the AWS variables that point boto3 at it."""
    reset = urllib.request.Request(f"{moto_server}/moto-api/reset", method="POST")  # noqa: S310 - local URL
    with urllib.request.urlopen(reset, timeout=10):  # noqa: S310 - local URL
        pass
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": moto_server,
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    return moto_server


def _client(service: str) -> Any:
    return boto3.Session().client(service)  # type: ignore[call-overload]


def test_creates_the_template_resources_idempotently(endpoint: str) -> None:
    first = create_local_stack(TEMPLATE, slack_webhook=None)
    second = create_local_stack(TEMPLATE, slack_webhook=WEBHOOK)
    assert dict(second) == dict(first)
    assert second.resources == first.resources
    ids = second.resources
    assert set(ids) == {
        "JobsTable",
        "TransitionsTopic",
        "NotifyDeadLetterQueue",
        "NotifyQueue",
        "NotifyQueueSubscription",
        "SlackWebhookSecret",
        "SlackSigningSecret",
        "OperatorTopic",
        "AlertEmailTopic",
        "JobwatchEventBus",
    }

    dynamodb = _client("dynamodb")
    assert dynamodb.list_tables()["TableNames"] == ["jobwatch-JobsTable"]
    table = dynamodb.describe_table(TableName="jobwatch-JobsTable")["Table"]
    assert table["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert table["SSEDescription"]["Status"] == "ENABLED"
    indexes = {gsi["IndexName"]: gsi for gsi in table["GlobalSecondaryIndexes"]}
    assert set(indexes) == {"pollable", "outbox", "created"}
    assert [k["AttributeName"] for k in indexes["pollable"]["KeySchema"]] == ["pollShard", "pk"]
    assert [k["AttributeName"] for k in indexes["outbox"]["KeySchema"]] == ["outboxShard", "sk"]
    assert [k["AttributeName"] for k in indexes["created"]["KeySchema"]] == ["sk", "createdKey"]
    assert indexes["created"]["Projection"]["ProjectionType"] == "KEYS_ONLY"
    assert indexes["outbox"]["Projection"]["ProjectionType"] == "ALL"
    assert indexes["pollable"]["Projection"]["ProjectionType"] == "INCLUDE"
    assert sorted(indexes["pollable"]["Projection"]["NonKeyAttributes"]) == [
        "doc",
        "health",
        "outboxShard",
        "version",
    ]
    ttl = dynamodb.describe_time_to_live(TableName="jobwatch-JobsTable")["TimeToLiveDescription"]
    assert (ttl["TimeToLiveStatus"], ttl["AttributeName"]) == ("ENABLED", "expiresAt")
    backups = dynamodb.describe_continuous_backups(TableName="jobwatch-JobsTable")
    pitr = backups["ContinuousBackupsDescription"]["PointInTimeRecoveryDescription"]
    assert pitr["PointInTimeRecoveryStatus"] == "ENABLED"

    sns = _client("sns")
    topics = sorted(topic["TopicArn"] for topic in sns.list_topics()["Topics"])
    assert topics == sorted([ids["TransitionsTopic"], ids["OperatorTopic"], ids["AlertEmailTopic"]])
    assert ids["TransitionsTopic"].endswith(":jobwatch-TransitionsTopic")
    topic_attributes = sns.get_topic_attributes(TopicArn=ids["TransitionsTopic"])["Attributes"]
    assert topic_attributes["KmsMasterKeyId"] == "alias/aws/sns"

    sqs = _client("sqs")
    assert sorted(sqs.list_queues()["QueueUrls"]) == sorted(
        [ids["NotifyQueue"], ids["NotifyDeadLetterQueue"]]
    )
    dlq = sqs.get_queue_attributes(QueueUrl=ids["NotifyDeadLetterQueue"], AttributeNames=["All"])[
        "Attributes"
    ]
    assert dlq["MessageRetentionPeriod"] == "1209600"
    queue = sqs.get_queue_attributes(QueueUrl=ids["NotifyQueue"], AttributeNames=["All"])["Attributes"]
    assert queue["VisibilityTimeout"] == "365"
    assert queue["MessageRetentionPeriod"] == "345600"
    redrive = json.loads(queue["RedrivePolicy"])
    assert redrive["deadLetterTargetArn"] == dlq["QueueArn"]
    assert int(redrive["maxReceiveCount"]) == 5

    subscriptions = sns.list_subscriptions_by_topic(TopicArn=ids["TransitionsTopic"])["Subscriptions"]
    assert {(s["Protocol"], s["Endpoint"], s["SubscriptionArn"]) for s in subscriptions} == {
        ("sqs", queue["QueueArn"], ids["NotifyQueueSubscription"]),
    }
    subscription = sns.get_subscription_attributes(SubscriptionArn=ids["NotifyQueueSubscription"])
    assert subscription["Attributes"]["RawMessageDelivery"] == "false"
    assert "FilterPolicy" not in subscription["Attributes"]  # the notifier routes every transition itself
    assert sns.list_subscriptions_by_topic(TopicArn=ids["AlertEmailTopic"])["Subscriptions"] == []
    assert sns.list_subscriptions_by_topic(TopicArn=ids["OperatorTopic"])["Subscriptions"] == []

    events = _client("events")
    assert ids["JobwatchEventBus"] == "jobwatch-jobs"  # Ref of a bus is its name: `${AWS::StackName}-jobs`
    buses = {bus["Name"]: bus["Arn"] for bus in events.list_event_buses()["EventBuses"]}
    assert set(buses) == {"default", "jobwatch-jobs"}
    assert buses["jobwatch-jobs"].endswith(":event-bus/jobwatch-jobs")

    secrets = _client("secretsmanager")
    assert sorted(s["Name"] for s in secrets.list_secrets()["SecretList"]) == [
        "jobwatch-slack/signing-secret",
        "jobwatch/slack-webhook",
    ]
    assert secrets.get_secret_value(SecretId="jobwatch/slack-webhook")["SecretString"] == WEBHOOK
    # GenerateSecretString: a random stand-in locally too, kept by the second run (no known default)
    signing = secrets.get_secret_value(SecretId="jobwatch-slack/signing-secret")["SecretString"]
    assert len(signing) >= 32 and second["JOBWATCH_SLACK_SIGNING_SECRET"] == ids["SlackSigningSecret"]

    assert second["JOBWATCH_TABLE"] == "jobwatch-JobsTable"
    assert second["JOBWATCH_TOPIC_ARN"] == ids["TransitionsTopic"]
    assert second["JOBWATCH_SLACK_WEBHOOK_SECRET"] == ids["SlackWebhookSecret"]
    assert second["JOBWATCH_NOTIFY_QUEUE_URL"] == ids["NotifyQueue"]
    assert second["JOBWATCH_NOTIFY_DLQ_URL"] == ids["NotifyDeadLetterQueue"]
    assert second["JOBWATCH_RETENTION_DAYS"] == "30"
    assert second["JOBWATCH_POLL_CONCURRENCY"] == "64"
    assert second["POWERTOOLS_SERVICE_NAME"] == "jobwatch"
    # Declared for `sam local` overrides only: the caller's own values must stay in force after eval.
    assert "AWS_ENDPOINT_URL" not in second
    assert "JOBWATCH_ALLOW_HTTP_LOOPBACK" not in second
    assert second["JOBWATCH_EMAIL_TOPIC_ARN"] == ids["AlertEmailTopic"]
    assert second["JOBWATCH_ALERT_EMAIL_EVENTS"] == "FAILED,CANCELED"
    assert set(second.functions) == {
        "PollerFunction",
        "NotifierFunction",
        "ApiFunction",
        "SlackInteractionsFunction",
    }
    # Each function's environment is the Globals plus its own; the export is their union.
    own = {
        "PollerFunction": {
            "JOBWATCH_TOPIC_ARN",
            "JOBWATCH_POLL_CONCURRENCY",
            "JOBWATCH_POLL_PERIOD_MINUTES",
            "JOBWATCH_POLL_SHARDS",
        },
        "NotifierFunction": {
            "JOBWATCH_NOTIFY_QUEUE_URL",
            "JOBWATCH_NOTIFY_DLQ_URL",
            "JOBWATCH_EMAIL_TOPIC_ARN",
            "JOBWATCH_ALERT_EMAIL_EVENTS",
            "JOBWATCH_SLACK_WEBHOOK_SECRET",
            "JOBWATCH_DELIVERY_ORDER_WAIT_S",
        },
        "ApiFunction": {
            "JOBWATCH_TOPIC_ARN",
            "JOBWATCH_EMAIL_TOPIC_ARN",
            "JOBWATCH_ALERT_EMAIL_EVENTS",
            "JOBWATCH_EVENT_BUSES",
            "JOBWATCH_POLL_SHARDS",
        },
        "SlackInteractionsFunction": {"JOBWATCH_SLACK_SIGNING_SECRET"},
    }
    assert (second["JOBWATCH_DELIVERY_ORDER_WAIT_S"], second["JOBWATCH_POLL_PERIOD_MINUTES"]) == ("3600", "1")
    owned = set().union(*own.values())
    shared = {k: v for k, v in second.items() if k not in owned}
    for function, environment in second.functions.items():
        assert environment == shared | {k: second[k] for k in own[function]}, function
    for skipped in (
        "PollerFunction",
        "NotifyDeadLetterAlarm",
        "JobwatchLayer",
        "NotifyQueuePolicy",
        "RegistrationApi",
    ):
        assert any(note.startswith(f"skipped {skipped} ") for note in second.notes), skipped
    assert "skipped AlertEmailSubscription: condition HasAlertEmail is false" in second.notes
    # one shard (the default): no shard queue, and the poll worker is not one of the stack's functions
    assert "skipped ShardQueue: condition FansOut is false" in second.notes
    assert "JOBWATCH_SHARD_QUEUE_URL" not in second


def test_transitions_reach_the_notify_queue_as_sns_envelopes(endpoint: str) -> None:
    stack = create_local_stack(TEMPLATE, slack_webhook=WEBHOOK)
    _client("sns").publish(
        TopicArn=stack["JOBWATCH_TOPIC_ARN"],
        Message=json.dumps({"event": "FAILED"}),
        Subject="jobwatch test",
        MessageAttributes={"event": {"DataType": "String", "StringValue": "FAILED"}},
    )
    messages = _client("sqs").receive_message(
        QueueUrl=stack["JOBWATCH_NOTIFY_QUEUE_URL"], MaxNumberOfMessages=1, WaitTimeSeconds=5
    )["Messages"]
    envelope = json.loads(messages[0]["Body"])
    assert envelope["Type"] == "Notification"
    assert json.loads(envelope["Message"]) == {"event": "FAILED"}
    assert envelope["MessageAttributes"]["event"] == {"Type": "String", "Value": "FAILED"}


def test_existing_webhook_is_kept_when_none_is_given(endpoint: str) -> None:
    create_local_stack(TEMPLATE, slack_webhook=WEBHOOK)
    create_local_stack(TEMPLATE, slack_webhook=None)
    secrets = _client("secretsmanager")
    assert secrets.get_secret_value(SecretId="jobwatch/slack-webhook")["SecretString"] == WEBHOOK
    create_local_stack(TEMPLATE, slack_webhook=WEBHOOK + "-2")
    assert secrets.get_secret_value(SecretId="jobwatch/slack-webhook")["SecretString"] == WEBHOOK + "-2"


def test_new_secret_gets_the_template_placeholder(endpoint: str) -> None:
    create_local_stack(TEMPLATE, slack_webhook=None)
    placeholder = load_template(TEMPLATE)["Resources"]["SlackWebhookSecret"]["Properties"]["SecretString"]
    value = _client("secretsmanager").get_secret_value(SecretId="jobwatch/slack-webhook")["SecretString"]
    assert value == placeholder


def test_refuses_real_aws_endpoints(endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    with pytest.raises(RuntimeError, match="AWS_ENDPOINT_URL"):
        create_local_stack(TEMPLATE, slack_webhook=None)


def test_short_tags_load_as_long_forms(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(
        "\n".join(
            [
                "Version: 2012-10-17",
                "A: !Ref X",
                "B: !GetAtt Q.Arn",
                "C: !Sub '${AWS::Region}-${X}'",
                "D: !If [Cond, !Join ['-', [a, b]], !Select [0, !Split [',', 'x,y']]]",
                "E: !Not [!Equals [!Ref X, '']]",
                "F: !Condition Cond",
                "G: !GetAtt [Q, QueueName]",
            ]
        ),
        encoding="utf-8",
    )
    assert load_template(path) == {
        "Version": "2012-10-17",
        "A": {"Ref": "X"},
        "B": {"Fn::GetAtt": ["Q", "Arn"]},
        "C": {"Fn::Sub": "${AWS::Region}-${X}"},
        "D": {
            "Fn::If": [
                "Cond",
                {"Fn::Join": ["-", ["a", "b"]]},
                {"Fn::Select": [0, {"Fn::Split": [",", "x,y"]}]},
            ]
        },
        "E": {"Fn::Not": [{"Fn::Equals": [{"Ref": "X"}, ""]}]},
        "F": {"Condition": "Cond"},
        "G": {"Fn::GetAtt": ["Q", "QueueName"]},
    }


def test_render_exports_round_trips_through_the_shell() -> None:
    env = {"B_VAR": 'it\'s $HOME; `x` "q"', "A_VAR": "plain", "C_VAR": ""}
    rendered = render_exports(env)
    assert rendered.splitlines()[0] == "export A_VAR=plain"
    assert [line.split("=", 1)[0] for line in rendered.splitlines()] == [
        "export A_VAR",
        "export B_VAR",
        "export C_VAR",
    ]
    script = rendered + 'printf "%s\\n%s\\n%s" "$A_VAR" "$B_VAR" "$C_VAR"'
    output = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True).stdout
    assert output.split("\n") == ["plain", env["B_VAR"], ""]
    with pytest.raises(ValueError, match="not a shell variable name"):
        render_exports({"BAD NAME": "x"})
