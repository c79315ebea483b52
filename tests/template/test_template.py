"""The SAM template: lint-clean, shaped as the code expects, and buildable for python3.13 on arm64.

`sam validate --lint` and `sam build` need the SAM CLI: set JOBWATCH_SAM to its `sam` executable
(`make template` / `make test` do). Its directory goes first on PATH so that python3.13 is found.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from jobwatch_tools.local_stack import load_template

from jobwatch.adapters.sns_message import sns_message_attributes
from jobwatch.delivery.engine import WAIT_LEASE_MARGIN_S, retry_window_s
from jobwatch.delivery.envelope import transition_from_sqs_body
from jobwatch.domain.routing import DEFAULT_EMAIL, NOTIFY_SECRET_PREFIX
from jobwatch.settings import (
    ApiSettings,
    NotifierSettings,
    PollerSettings,
    SlackInteractionSettings,
    env_name,
)
from jobwatch_devkit.sam import SamCli, run_sam

pytestmark = pytest.mark.template

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
EVENTS = ROOT / "events"
SECRET_ARN_PATTERN = "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:jobwatch/*"
NOTIFY_SECRET_ARN_PATTERN = SECRET_ARN_PATTERN.replace("jobwatch/*", f"{NOTIFY_SECRET_PREFIX}*")
DEFAULT_BUS_ARN = "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/default"
FUNCTIONS = {
    "PollerFunction",
    "PollWorkerFunction",
    "NotifierFunction",
    "ApiFunction",
    "SlackInteractionsFunction",
}
REAL_WEBHOOK = re.compile(r"hooks\.slack\.com/services/T[A-Z0-9]+/B[A-Z0-9]+/[A-Za-z0-9]{8,}")
SCHEDULE_INPUT = {
    "scheduledTime": "<aws.scheduler.scheduled-time>",
    "executionId": "<aws.scheduler.execution-id>",
}


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template(TEMPLATE)


@pytest.fixture(scope="module")
def resources(template: dict[str, Any]) -> dict[str, Any]:
    return dict(template["Resources"])


def _functions(resources: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        lid: spec["Properties"]
        for lid, spec in resources.items()
        if spec["Type"] == "AWS::Serverless::Function"
    }


def _props(resources: dict[str, Any], logical_id: str) -> dict[str, Any]:
    return dict(resources[logical_id]["Properties"])


def _default(kind: type[Any], field: str) -> Any:
    """The code's default of one setting (what a function gets when the template does not set it)."""
    return kind.model_fields[field].default


def _statements(function: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        statement
        for policy in function["Policies"]
        if isinstance(policy, dict) and "Statement" in policy
        for statement in policy["Statement"]
    ]


def _granted(function: dict[str, Any], prefix: str) -> list[tuple[str, str, Any]]:
    """(effect, action, resource) of every statement action of one service (`sns:`, `sqs:`...)."""
    return [
        (statement["Effect"], action, statement["Resource"])
        for statement in _statements(function)
        for action in _actions(statement)
        if action.startswith(prefix)
    ]


# -- lint ---------------------------------------------------------------------------------------


def test_cfn_lint_reports_nothing() -> None:
    cfn_lint = Path(sys.executable).parent / "cfn-lint"
    assert cfn_lint.exists(), f"cfn-lint not installed next to {sys.executable}"
    result = subprocess.run(
        [str(cfn_lint), str(TEMPLATE)], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == ""


# -- structure ----------------------------------------------------------------------------------


def test_every_function_is_python313_on_arm64_with_the_layer(
    template: dict[str, Any], resources: dict[str, Any]
) -> None:
    defaults = template["Globals"]["Function"]
    functions = _functions(resources)
    assert set(functions) == FUNCTIONS
    for logical_id, props in functions.items():
        assert props.get("Runtime", defaults.get("Runtime")) == "python3.13", logical_id
        assert props.get("Architectures", defaults.get("Architectures")) == ["arm64"], logical_id
        assert {"Ref": "JobwatchLayer"} in props.get("Layers", defaults.get("Layers")), logical_id
        assert props["Handler"] == "app.handler"
    assert defaults["Tracing"] == "Active"
    assert defaults["MemorySize"] == 512


def test_layer_builds_with_python313_for_arm64(resources: dict[str, Any]) -> None:
    layer = resources["JobwatchLayer"]
    assert layer["Type"] == "AWS::Serverless::LayerVersion"
    assert layer["Metadata"] == {"BuildMethod": "python3.13", "BuildArchitecture": "arm64"}
    assert layer["Properties"]["ContentUri"] == "layers/jobwatch/"
    assert layer["Properties"]["CompatibleRuntimes"] == ["python3.13"]
    assert layer["Properties"]["CompatibleArchitectures"] == ["arm64"]


FUNCTION_VARIABLES: dict[str, dict[str, Any]] = {
    "SlackInteractionsFunction": {"JOBWATCH_SLACK_SIGNING_SECRET": {"Ref": "SlackSigningSecret"}},
    "PollerFunction": {
        "JOBWATCH_TOPIC_ARN": {"Ref": "TransitionsTopic"},
        "JOBWATCH_POLL_CONCURRENCY": {"Ref": "PollConcurrency"},
        "JOBWATCH_POLL_PERIOD_MINUTES": {"Ref": "PollPeriodMinutes"},
        "JOBWATCH_POLL_SHARDS": {"Ref": "PollShards"},
        "JOBWATCH_SHARD_QUEUE_URL": {"Fn::If": ["FansOut", {"Ref": "ShardQueue"}, {"Ref": "AWS::NoValue"}]},
    },
    "PollWorkerFunction": {
        "JOBWATCH_TOPIC_ARN": {"Ref": "TransitionsTopic"},
        "JOBWATCH_POLL_CONCURRENCY": {"Ref": "PollConcurrency"},
        "JOBWATCH_POLL_PERIOD_MINUTES": {"Ref": "PollPeriodMinutes"},
        "JOBWATCH_POLL_SHARDS": {"Ref": "PollShards"},
    },
    "NotifierFunction": {
        "JOBWATCH_NOTIFY_QUEUE_URL": {"Ref": "NotifyQueue"},
        "JOBWATCH_NOTIFY_DLQ_URL": {"Ref": "NotifyDeadLetterQueue"},
        "JOBWATCH_EMAIL_TOPIC_ARN": {"Ref": "AlertEmailTopic"},
        "JOBWATCH_ALERT_EMAIL_EVENTS": {"Fn::Join": [",", {"Ref": "AlertEmailEvents"}]},
        "JOBWATCH_SLACK_WEBHOOK_SECRET": {"Ref": "SlackWebhookSecret"},
        "JOBWATCH_DELIVERY_ORDER_WAIT_S": "3600",
    },
    "ApiFunction": {
        "JOBWATCH_TOPIC_ARN": {"Ref": "TransitionsTopic"},
        "JOBWATCH_EMAIL_TOPIC_ARN": {"Ref": "AlertEmailTopic"},
        "JOBWATCH_ALERT_EMAIL_EVENTS": {"Fn::Join": [",", {"Ref": "AlertEmailEvents"}]},
        "JOBWATCH_EVENT_BUSES": {"Fn::Sub": "${JobwatchEventBus},default"},
        "JOBWATCH_POLL_SHARDS": {"Ref": "PollShards"},
    },
}
"""What each function is told, beyond the globals: only the resources it uses (D9). The API names the
alert e-mail topic (route e-mail subscriptions), AlertEmailEvents (the default routes it shows) and
the buses the notifier may put events on (routes naming another are refused)."""


def test_environment_points_at_the_stack_resources(
    template: dict[str, Any], resources: dict[str, Any]
) -> None:
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["JOBWATCH_TABLE"] == {"Ref": "JobsTable"}
    assert variables["JOBWATCH_RETENTION_DAYS"] == {"Ref": "RetentionDays"}
    assert variables["POWERTOOLS_LOG_LEVEL"] == {"Ref": "LogLevel"}
    # Deployed functions must use the real endpoints: an empty value is "unset" for botocore.
    assert variables["AWS_ENDPOINT_URL"] == ""
    assert variables["JOBWATCH_ALLOW_HTTP_LOOPBACK"] == "false"
    assert not [
        name for name in variables if name.endswith(("_ARN", "_URL", "_SECRET")) and "ENDPOINT" not in name
    ]
    for logical_id, expected in FUNCTION_VARIABLES.items():
        own = _props(resources, logical_id)["Environment"]["Variables"]
        assert own == expected, logical_id


def test_each_function_is_told_every_required_setting_of_its_model(
    template: dict[str, Any], resources: dict[str, Any]
) -> None:
    """A required setting missing from a function's environment would stop its cold start (D9)."""
    models = {
        "PollerFunction": PollerSettings,
        "PollWorkerFunction": PollerSettings,
        "NotifierFunction": NotifierSettings,
        "ApiFunction": ApiSettings,
        "SlackInteractionsFunction": SlackInteractionSettings,
    }
    assert set(models) == FUNCTIONS
    declared_globally = set(template["Globals"]["Function"]["Environment"]["Variables"])
    for logical_id, model in models.items():
        required = {env_name(name) for name, field in model.model_fields.items() if field.is_required()}
        declared = declared_globally | set(_props(resources, logical_id)["Environment"]["Variables"])
        assert required <= declared, (logical_id, required - declared)


def test_table_keys_indexes_ttl_pitr_and_encryption(resources: dict[str, Any]) -> None:
    table = resources["JobsTable"]
    assert table["DeletionPolicy"] == "Retain"
    assert table["UpdateReplacePolicy"] == "Retain"
    props = table["Properties"]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    attribute_types = {a["AttributeName"]: a["AttributeType"] for a in props["AttributeDefinitions"]}
    assert attribute_types == {"pk": "S", "sk": "S", "pollShard": "S", "outboxShard": "S", "createdKey": "S"}
    indexes = {gsi["IndexName"]: gsi for gsi in props["GlobalSecondaryIndexes"]}
    assert set(indexes) == {"pollable", "outbox", "created"}
    # GET /jobs pages through it (D42): every job item under its sk, keys only (state writes skip it)
    assert indexes["created"] == {
        "IndexName": "created",
        "KeySchema": [
            {"AttributeName": "sk", "KeyType": "HASH"},
            {"AttributeName": "createdKey", "KeyType": "RANGE"},
        ],
        "Projection": {"ProjectionType": "KEYS_ONLY"},
    }
    assert indexes["pollable"]["KeySchema"] == [
        {"AttributeName": "pollShard", "KeyType": "HASH"},
        {"AttributeName": "pk", "KeyType": "RANGE"},
    ]
    assert indexes["outbox"]["KeySchema"] == [
        {"AttributeName": "outboxShard", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    assert indexes["outbox"]["Projection"] == {"ProjectionType": "ALL"}
    assert indexes["pollable"]["Projection"] == {
        "ProjectionType": "INCLUDE",
        "NonKeyAttributes": ["doc", "version", "health", "outboxShard"],
    }
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expiresAt", "Enabled": True}
    assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert props["SSESpecification"]["SSEEnabled"] is True


def test_poller_schedule_passes_scheduler_placeholders(resources: dict[str, Any]) -> None:
    poller = _props(resources, "PollerFunction")
    assert poller["Timeout"] == 300
    assert "ReservedConcurrentExecutions" not in poller
    schedule = poller["Events"]["Schedule"]
    assert schedule["Type"] == "ScheduleV2"
    props = schedule["Properties"]
    assert props["ScheduleExpression"] == {
        "Fn::If": ["PollsEveryMinute", "rate(1 minute)", {"Fn::Sub": "rate(${PollPeriodMinutes} minutes)"}]
    }
    # The poller counts adaptive intervals and Retry-After holds in periods of this same schedule.
    assert poller["Environment"]["Variables"]["JOBWATCH_POLL_PERIOD_MINUTES"] == {"Ref": "PollPeriodMinutes"}
    assert props["FlexibleTimeWindow"] == {"Mode": "OFF"}
    assert props["RetryPolicy"] == {"MaximumRetryAttempts": 0}
    assert json.loads(props["Input"]) == SCHEDULE_INPUT
    assert json.loads((EVENTS / "poller-schedule.json").read_text(encoding="utf-8")) == SCHEDULE_INPUT


def test_notifier_consumes_its_queue_with_partial_batch_failures(resources: dict[str, Any]) -> None:
    notifier = _props(resources, "NotifierFunction")
    assert (notifier["CodeUri"], notifier["Handler"]) == ("functions/notifier/", "app.handler")
    assert notifier["LoggingConfig"] == {"LogGroup": {"Ref": "NotifierLogGroup"}}
    events = [event for event in notifier["Events"].values() if event["Type"] == "SQS"]
    assert len(events) == 1 and len(notifier["Events"]) == 1
    props = events[0]["Properties"]
    assert props["Queue"] == {"Fn::GetAtt": ["NotifyQueue", "Arn"]}
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert props["BatchSize"] == 10
    assert props["MaximumBatchingWindowInSeconds"] == 5
    assert props["ScalingConfig"] == {"MaximumConcurrency": 2}
    queue = _props(resources, "NotifyQueue")
    assert queue["VisibilityTimeout"] >= 6 * notifier["Timeout"] + props["MaximumBatchingWindowInSeconds"]
    assert queue["SqsManagedSseEnabled"] is True


FAN_OUT = {
    "ShardQueue",
    "ShardDeadLetterQueue",
    "PollWorkerFunction",
    "PollWorkerLogGroup",
    "PollWorkerErrorsAlarm",
    "ShardDeadLetterAlarm",
}


def test_fan_out_exists_only_with_more_than_one_shard(
    template: dict[str, Any], resources: dict[str, Any]
) -> None:
    """Small fleets run in one invocation with no extra moving parts: PollShards defaults to 1 (D44)."""
    assert template["Parameters"]["PollShards"]["Default"] == 1
    assert template["Conditions"]["FansOut"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "PollShards"}, "1"]}]}
    assert {lid for lid, spec in resources.items() if spec.get("Condition") == "FansOut"} == FAN_OUT


def test_poll_workers_take_one_order_at_a_time_with_partial_batch_failures(resources: dict[str, Any]) -> None:
    worker = _props(resources, "PollWorkerFunction")
    assert (worker["CodeUri"], worker["Handler"]) == ("functions/poll_worker/", "app.handler")
    assert worker["LoggingConfig"] == {"LogGroup": {"Ref": "PollWorkerLogGroup"}}
    (event,) = worker["Events"].values()
    props = event["Properties"]
    assert event["Type"] == "SQS" and props["Queue"] == {"Fn::GetAtt": ["ShardQueue", "Arn"]}
    assert (props["BatchSize"], props["FunctionResponseTypes"]) == (1, ["ReportBatchItemFailures"])
    assert props["ScalingConfig"] == {"MaximumConcurrency": {"Ref": "PollWorkers"}}
    queue = _props(resources, "ShardQueue")
    assert queue["VisibilityTimeout"] >= 6 * worker["Timeout"]
    redrive = queue["RedrivePolicy"]
    assert redrive["deadLetterTargetArn"] == {"Fn::GetAtt": ["ShardDeadLetterQueue", "Arn"]}
    # a twice-failed order must still exist when its second visibility timeout ends, to be redriven
    assert queue["MessageRetentionPeriod"] > queue["VisibilityTimeout"] * redrive["maxReceiveCount"]


def test_only_the_scheduled_poller_may_send_shard_orders(resources: dict[str, Any]) -> None:
    poller = _props(resources, "PollerFunction")
    conditional = [p for p in poller["Policies"] if "Fn::If" in p]
    assert conditional == [
        {
            "Fn::If": [
                "FansOut",
                {"SQSSendMessagePolicy": {"QueueName": {"Fn::GetAtt": ["ShardQueue", "QueueName"]}}},
                {"Ref": "AWS::NoValue"},
            ]
        }
    ]
    for logical_id, props in _functions(resources).items():
        if logical_id != "PollerFunction":
            assert "ShardQueue" not in json.dumps(props.get("Policies", [])), logical_id


def test_notifier_publishes_alert_email_only_to_the_email_topic(resources: dict[str, Any]) -> None:
    notifier = _props(resources, "NotifierFunction")
    assert not [p for p in notifier["Policies"] if "SNSPublishMessagePolicy" in p]
    # Never to the transitions topic: a notifier that republished would notify everything again.
    assert _granted(notifier, "sns:") == [("Allow", "sns:Publish", {"Ref": "AlertEmailTopic"})]
    # Failed publishes are retried as delayed copies for about 1 h 15 min, then dead-lettered.
    attempts = _default(NotifierSettings, "email_max_attempts")
    assert retry_window_s(attempts, _default(NotifierSettings, "email_retry_base_s")) == 4530


def test_notifier_may_send_delayed_copies_to_its_own_queue_and_park_in_its_dead_letter_queue(
    resources: dict[str, Any],
) -> None:
    """Every destination retries and waits as a delayed copy on the notifier's queue (or, as a
    fallback, through visibility); what failed for good goes to its dead-letter queue."""
    notifier = _props(resources, "NotifierFunction")
    queue, dlq = {"Fn::GetAtt": ["NotifyQueue", "Arn"]}, {"Fn::GetAtt": ["NotifyDeadLetterQueue", "Arn"]}
    assert not [p for p in notifier["Policies"] if "SQSSendMessagePolicy" in p or "SQSPollerPolicy" in p]
    assert sorted(_granted(notifier, "sqs:"), key=str) == sorted(
        [
            ("Allow", "sqs:SendMessage", queue),
            ("Allow", "sqs:ChangeMessageVisibility", queue),
            ("Allow", "sqs:SendMessage", dlq),
        ],
        key=str,
    )


def test_notifier_waits_for_a_predecessor_until_it_could_have_been_redriven(
    resources: dict[str, Any],
) -> None:
    """A deferred transition waits for its job's previous one longer than that one can be out of sight
    (redelivered by SQS after crashed invocations), and may send its delayed copy. While the notifier
    retries the previous one, a standing copy keeps it in sight however long the retries take."""
    notifier = _props(resources, "NotifierFunction")
    queue = _props(resources, "NotifyQueue")
    wait = float(notifier["Environment"]["Variables"]["JOBWATCH_DELIVERY_ORDER_WAIT_S"])
    assert wait > queue["VisibilityTimeout"] * queue["RedrivePolicy"]["maxReceiveCount"]
    assert wait > queue["VisibilityTimeout"] * queue["RedrivePolicy"]["maxReceiveCount"] + WAIT_LEASE_MARGIN_S
    # Failed posts ride out a long Slack incident.
    attempts = _default(NotifierSettings, "delivery_max_attempts")
    assert retry_window_s(attempts, _default(NotifierSettings, "delivery_retry_base_s")) > 6 * 3600
    # The template and the code's default agree.
    assert wait == _default(NotifierSettings, "delivery_order_wait_s")
    assert ("Allow", "sqs:SendMessage", {"Fn::GetAtt": ["NotifyQueue", "Arn"]}) in _granted(notifier, "sqs:")


def test_the_notify_queue_redrives_to_an_alarmed_dead_letter_queue(resources: dict[str, Any]) -> None:
    queue = _props(resources, "NotifyQueue")
    assert queue["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": ["NotifyDeadLetterQueue", "Arn"]},
        "maxReceiveCount": 5,
    }
    dlq = _props(resources, "NotifyDeadLetterQueue")
    assert dlq["MessageRetentionPeriod"] == 14 * 24 * 3600
    assert dlq["MessageRetentionPeriod"] > queue["MessageRetentionPeriod"]
    assert dlq["SqsManagedSseEnabled"] is True
    alarm = _props(resources, "NotifyDeadLetterAlarm")
    assert alarm["Namespace"] == "AWS/SQS"
    assert alarm["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert alarm["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": ["NotifyDeadLetterQueue", "QueueName"]}}
    ]
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanThreshold", 0)
    assert alarm["AlarmActions"] == [{"Ref": "OperatorTopic"}]


def test_every_dead_letter_queue_has_an_alarm(resources: dict[str, Any]) -> None:
    """ "Messages in any DLQ" alarms: a new queue with a redrive policy cannot slip through."""
    dead_letter_queues = {
        queue["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
        for queue in resources.values()
        if queue["Type"] == "AWS::SQS::Queue" and "RedrivePolicy" in queue.get("Properties", {})
    }
    alarmed = {
        alarm["Properties"]["Dimensions"][0]["Value"]["Fn::GetAtt"][0]
        for alarm in resources.values()
        if alarm["Type"] == "AWS::CloudWatch::Alarm" and alarm["Properties"].get("Namespace") == "AWS/SQS"
    }
    assert dead_letter_queues == {"NotifyDeadLetterQueue", "ShardDeadLetterQueue"}
    assert dead_letter_queues <= alarmed


def test_every_function_has_an_errors_alarm(resources: dict[str, Any]) -> None:
    """Every function but the API, whose errors are answered to its caller (and logged with it)."""
    alarms = {
        lid: spec["Properties"]
        for lid, spec in resources.items()
        if spec["Type"] == "AWS::CloudWatch::Alarm" and spec["Properties"].get("Namespace") == "AWS/Lambda"
    }
    alarmed = {errors["Dimensions"][0]["Value"]["Ref"] for errors in alarms.values()}
    assert alarmed == FUNCTIONS - {"ApiFunction"}
    for logical_id, function in (
        ("PollerErrorsAlarm", "PollerFunction"),
        ("PollWorkerErrorsAlarm", "PollWorkerFunction"),
        ("NotifierErrorsAlarm", "NotifierFunction"),
        ("SlackInteractionsErrorsAlarm", "SlackInteractionsFunction"),
    ):
        errors = alarms[logical_id]
        assert (errors["Namespace"], errors["MetricName"]) == ("AWS/Lambda", "Errors")
        assert errors["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": function}}]
        assert (errors["ComparisonOperator"], errors["Threshold"]) == ("GreaterThanOrEqualToThreshold", 1)
        assert errors["Period"] == 300
        assert errors["AlarmActions"] == [{"Ref": "OperatorTopic"}]


def test_topic_subscriptions(template: dict[str, Any], resources: dict[str, Any]) -> None:
    assert _props(resources, "TransitionsTopic")["KmsMasterKeyId"] == "alias/aws/sns"
    feed = _props(resources, "NotifyQueueSubscription")
    assert (feed["TopicArn"], feed["Protocol"]) == ({"Ref": "TransitionsTopic"}, "sqs")
    assert feed["Endpoint"] == {"Fn::GetAtt": ["NotifyQueue", "Arn"]}
    assert feed["RawMessageDelivery"] is False  # the notifier parses the SNS envelope
    assert "FilterPolicy" not in feed  # every transition: the routes decide where it goes
    assert resources["NotifyQueueSubscription"]["DependsOn"] == "NotifyQueuePolicy"
    policy = _props(resources, "NotifyQueuePolicy")["PolicyDocument"]["Statement"][0]
    assert policy["Action"] == "sqs:SendMessage"
    assert policy["Resource"] == {"Fn::GetAtt": ["NotifyQueue", "Arn"]}
    assert policy["Condition"]["ArnEquals"]["aws:SourceArn"] == {"Ref": "TransitionsTopic"}
    transitions_feeds = [
        r
        for r in resources.values()
        if r["Type"] == "AWS::SNS::Subscription"
        and r["Properties"]["TopicArn"] == {"Ref": "TransitionsTopic"}
    ]
    assert transitions_feeds == [resources["NotifyQueueSubscription"]]  # one queue, one notifier

    # E-mail goes through the notifier (dedupe by transitionId) to an e-mail-only topic.
    email = resources["AlertEmailSubscription"]
    assert email["Condition"] == "HasAlertEmail"
    assert email["Properties"]["TopicArn"] == {"Ref": "AlertEmailTopic"}
    assert email["Properties"]["Protocol"] == "email"
    # The deployment's own address gets the default e-mail destination only (the notifier publishes
    # each e-mail with its destination's id; addresses that routes name filter on their own).
    assert email["Properties"]["FilterPolicyScope"] == "MessageAttributes"
    assert email["Properties"]["FilterPolicy"] == {"destination": [DEFAULT_EMAIL]}
    assert not [
        r
        for r in resources.values()
        if r["Type"] == "AWS::SNS::Subscription"
        and r["Properties"]["TopicArn"] == {"Ref": "TransitionsTopic"}
        and r["Properties"]["Protocol"] == "email"
    ], "an e-mail subscription of the transitions topic would show republished transitions twice"
    assert _props(resources, "AlertEmailTopic")["KmsMasterKeyId"] == "alias/aws/sns"
    events_parameter = template["Parameters"]["AlertEmailEvents"]
    assert (events_parameter["Type"], events_parameter["Default"]) == (
        "CommaDelimitedList",
        "FAILED,CANCELED",
    )
    assert resources["OperatorEmailSubscription"]["Condition"] == "HasOperatorEmail"


def test_the_event_bus_and_only_the_notifier_may_put_events(resources: dict[str, Any]) -> None:
    bus = resources["JobwatchEventBus"]
    assert bus["Type"] == "AWS::Events::EventBus"
    assert bus["Properties"]["Name"] == {"Fn::Sub": "${AWS::StackName}-jobs"}
    notifier = _props(resources, "NotifierFunction")
    assert _granted(notifier, "events:") == [
        (
            "Allow",
            "events:PutEvents",
            [{"Fn::GetAtt": ["JobwatchEventBus", "Arn"]}, {"Fn::Sub": DEFAULT_BUS_ARN}],
        )
    ]
    for logical_id, props in _functions(resources).items():
        if logical_id != "NotifierFunction":
            assert _granted(props, "events:") == [], logical_id


def test_the_api_manages_route_email_subscriptions_on_the_alert_email_topic_only(
    resources: dict[str, Any],
) -> None:
    api = _props(resources, "ApiFunction")
    assert _granted(api, "sns:") == [
        ("Allow", "sns:Subscribe", {"Ref": "AlertEmailTopic"}),
        ("Allow", "sns:ListSubscriptionsByTopic", {"Ref": "AlertEmailTopic"}),
        # These act on subscription ARNs, which IAM cannot scope to one topic in advance.
        ("Allow", "sns:GetSubscriptionAttributes", "*"),
        ("Allow", "sns:SetSubscriptionAttributes", "*"),
        ("Allow", "sns:Unsubscribe", "*"),
    ]
    # It publishes TEST notifications to the transitions topic, and nothing to the e-mail topic itself.
    assert [p for p in api["Policies"] if "SNSPublishMessagePolicy" in p] == [
        {"SNSPublishMessagePolicy": {"TopicName": {"Fn::GetAtt": ["TransitionsTopic", "TopicName"]}}}
    ]


TABLE_ACCESS: dict[str, set[str]] = {
    "PollerFunction": {"GetItem", "PutItem", "UpdateItem", "Query"},
    "PollWorkerFunction": {"GetItem", "PutItem", "UpdateItem", "Query"},
    "NotifierFunction": {"GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query"},
    "ApiFunction": {"GetItem", "BatchGetItem", "PutItem", "UpdateItem", "DeleteItem", "Query"},
    "SlackInteractionsFunction": {"GetItem", "PutItem", "UpdateItem", "DeleteItem"},
}
"""Least privilege, declared: what each function may do to the jobs table (and its indexes). The
notifier claims, records routing, keeps Slack threads and reads the routes (Query)."""

POLLING_SECRETS: list[tuple[str, str, Any]] = [
    ("Allow", "secretsmanager:GetSecretValue", {"Fn::Sub": SECRET_ARN_PATTERN}),
    (
        "Deny",
        "secretsmanager:GetSecretValue",
        [{"Ref": "SlackWebhookSecret"}, {"Fn::Sub": NOTIFY_SECRET_ARN_PATTERN}],
    ),
]

SECRET_ACCESS: dict[str, list[tuple[str, str, Any]]] = {
    "PollerFunction": POLLING_SECRETS,
    "PollWorkerFunction": POLLING_SECRETS,
    "NotifierFunction": [
        (
            "Allow",
            "secretsmanager:GetSecretValue",
            [{"Ref": "SlackWebhookSecret"}, {"Fn::Sub": NOTIFY_SECRET_ARN_PATTERN}],
        )
    ],
    "ApiFunction": [("Allow", "secretsmanager:DescribeSecret", {"Fn::Sub": SECRET_ARN_PATTERN})],
    "SlackInteractionsFunction": [("Allow", "secretsmanager:GetSecretValue", {"Ref": "SlackSigningSecret"})],
}
"""Least privilege, declared: the poller reads upstream keys but no notification secret, the notifier
only the destinations' secrets (the deployment's webhook and jobwatch/notify/*: bot tokens, webhook
URLs, signing keys), the internet-facing API no secret value at all."""


def _statements_of(props: dict[str, Any]) -> list[dict[str, Any]]:
    return [statement for policy in props["Policies"] for statement in policy.get("Statement", [])]


def _actions(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return action if isinstance(action, list) else [action]


def test_each_function_may_touch_the_table_only_as_declared(resources: dict[str, Any]) -> None:
    for logical_id, props in _functions(resources).items():
        assert not [p for p in props["Policies"] if "DynamoDBCrudPolicy" in p or "DynamoDBReadPolicy" in p]
        granted = set()
        for statement in _statements_of(props):
            for action in _actions(statement):
                if action.startswith("dynamodb:"):
                    assert statement["Effect"] == "Allow"
                    assert statement["Resource"] == [
                        {"Fn::GetAtt": ["JobsTable", "Arn"]},
                        {"Fn::Sub": "${JobsTable.Arn}/index/*"},
                    ]
                    granted.add(action.removeprefix("dynamodb:"))
        assert granted == TABLE_ACCESS[logical_id], logical_id


def test_each_function_reads_only_the_secrets_it_needs(resources: dict[str, Any]) -> None:
    for logical_id, props in _functions(resources).items():
        assert not [p for p in props["Policies"] if "AWSSecretsManagerGetSecretValuePolicy" in p]
        found = [
            (statement["Effect"], action, statement["Resource"])
            for statement in _statements_of(props)
            for action in _actions(statement)
            if action.startswith("secretsmanager:")
        ]
        assert found == SECRET_ACCESS[logical_id], logical_id


def test_the_api_keeps_an_access_log_with_the_caller(resources: dict[str, Any]) -> None:
    api = _props(resources, "RegistrationApi")
    setting = api["AccessLogSetting"]
    assert setting["DestinationArn"] == {"Fn::GetAtt": ["ApiAccessLogGroup", "Arn"]}
    fields = json.loads(setting["Format"])
    assert {"caller", "userArn", "sourceIp", "route", "method", "status", "requestId"} <= set(fields)
    assert _props(resources, "ApiAccessLogGroup")["RetentionInDays"] == 30
    assert resources["RegistrationApi"]["DependsOn"] == "ApiLoggingReady"


def test_no_real_webhook_in_the_repository_files() -> None:
    for path in (TEMPLATE, *EVENTS.glob("*.json")):
        assert not REAL_WEBHOOK.search(path.read_text(encoding="utf-8")), path


def test_webhook_secret_holds_a_placeholder(resources: dict[str, Any]) -> None:
    secret = _props(resources, "SlackWebhookSecret")
    assert secret["Name"] == "jobwatch/slack-webhook"
    assert not secret["SecretString"].startswith("http")
    assert "REPLACE" in secret["SecretString"]


def test_outputs(template: dict[str, Any]) -> None:
    assert set(template["Outputs"]) >= {
        "TableName",
        "TopicArn",
        "NotifyQueueUrl",
        "NotifyDeadLetterQueueUrl",
        "EventBusName",
        "SlackWebhookSecretArn",
        "AlertEmailTopicArn",
        "OperatorTopicArn",
        "ApiUrl",
    }
    assert template["Outputs"]["EventBusName"]["Value"] == {"Ref": "JobwatchEventBus"}
    assert template["Outputs"]["ApiUrl"]["Value"] == {
        "Fn::Sub": "https://${RegistrationApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}/v1"
    }


# -- registration API ---------------------------------------------------------------------------


def _api_events(resources: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: event for name, event in _props(resources, "ApiFunction")["Events"].items()}


def test_api_requires_iam_on_every_route(resources: dict[str, Any]) -> None:
    api = resources["RegistrationApi"]
    assert api["Type"] == "AWS::Serverless::Api"
    auth = api["Properties"]["Auth"]
    assert auth["DefaultAuthorizer"] == "AWS_IAM"
    # Without this SAM invokes the function with the caller's credentials (callers would need Lambda rights).
    assert auth["InvokeRole"] == "NONE"
    events = _api_events(resources)
    assert events, "ApiFunction has no API events"
    for name, event in events.items():
        assert event["Type"] == "Api", name
        props = event["Properties"]
        assert props["RestApiId"] == {"Ref": "RegistrationApi"}, name
        # A per-route Auth could only weaken the default (e.g. Authorizer: NONE): none is allowed.
        assert "Auth" not in props, name
    # No other API resource or function event could expose a route without IAM.
    apis = [
        lid
        for lid, spec in resources.items()
        if spec["Type"] in ("AWS::Serverless::Api", "AWS::Serverless::HttpApi")
    ]
    assert apis == ["RegistrationApi", "SlackInteractionsApi"]  # the other one: Slack's, below
    for logical_id, props in _functions(resources).items():
        if logical_id not in ("ApiFunction", "SlackInteractionsFunction"):
            assert all(e["Type"] not in ("Api", "HttpApi") for e in (props.get("Events") or {}).values())


def test_the_slack_interactivity_route_is_the_only_public_one_and_reads_only_its_secret(
    resources: dict[str, Any],
) -> None:
    """Slack cannot sign AWS requests: one POST route without IAM, on an API of its own, throttled; the
    function verifies Slack's signature with the one secret it may read (D46)."""
    api = _props(resources, "SlackInteractionsApi")
    assert "Auth" not in api and resources["SlackInteractionsApi"]["DependsOn"] == "ApiLoggingReady"
    (throttle,) = api["MethodSettings"]
    assert throttle["ThrottlingRateLimit"] <= 50 and throttle["ThrottlingBurstLimit"] <= 100
    assert api["AccessLogSetting"]["DestinationArn"] == {"Fn::GetAtt": ["ApiAccessLogGroup", "Arn"]}
    assert {"sourceIp", "route", "status", "requestId"} <= set(json.loads(api["AccessLogSetting"]["Format"]))
    function = _props(resources, "SlackInteractionsFunction")
    assert (function["CodeUri"], function["Handler"]) == ("functions/slack_interactions/", "app.handler")
    assert function["Timeout"] <= 10  # Slack waits 3 s for the answer
    assert function["LoggingConfig"] == {"LogGroup": {"Ref": "SlackInteractionsLogGroup"}}
    (event,) = function["Events"].values()
    assert event == {
        "Type": "Api",
        "Properties": {
            "RestApiId": {"Ref": "SlackInteractionsApi"},
            "Path": "/slack/interactions",
            "Method": "POST",
        },
    }
    for logical_id, props in _functions(resources).items():
        for other in (props.get("Events") or {}).values():
            if other["Type"] == "Api" and other["Properties"]["RestApiId"] == {"Ref": "SlackInteractionsApi"}:
                assert logical_id == "SlackInteractionsFunction"
    # Generated, never a published placeholder that anyone could sign with; outside jobwatch/*, which
    # the pollers may read, so no other function's policy reaches it.
    secret = _props(resources, "SlackSigningSecret")
    assert "SecretString" not in secret and secret["GenerateSecretString"]["PasswordLength"] >= 32
    assert not secret["Name"].startswith("jobwatch/")
    assert "jobwatch/*" in SECRET_ARN_PATTERN


def test_api_routes_are_exactly_the_handlers_routes(resources: dict[str, Any]) -> None:
    from jobwatch.api.routes import ROUTES

    declared = {
        (e["Properties"]["Method"].upper(), e["Properties"]["Path"]) for e in _api_events(resources).values()
    }
    assert declared == set(ROUTES)
    function = _props(resources, "ApiFunction")
    assert (function["CodeUri"], function["Handler"]) == ("functions/api/", "app.handler")
    assert function["Timeout"] <= 29  # API Gateway's integration timeout
    policies = function["Policies"]
    assert {
        "SNSPublishMessagePolicy": {"TopicName": {"Fn::GetAtt": ["TransitionsTopic", "TopicName"]}}
    } in policies
    assert function["LoggingConfig"] == {"LogGroup": {"Ref": "ApiLogGroup"}}


def test_api_sample_events_cover_every_route() -> None:
    from jobwatch.api.routes import ROUTES

    seen = set()
    for path in sorted(EVENTS.glob("api-*.json")):
        event = json.loads(path.read_text(encoding="utf-8"))
        route = (event["httpMethod"], event["resource"])
        assert route in ROUTES, path.name
        assert event["requestContext"]["identity"]["userArn"].startswith("arn:aws:iam::"), path.name
        assert event["requestContext"]["resourcePath"] == event["resource"], path.name
        seen.add(route)
    assert seen == set(ROUTES)


# -- operator alarms ----------------------------------------------------------------------------

METRIC_ALARMS = {
    "OutboxDeadLetterAlarm": "OutboxDeadLettered",
    "JobCrashAlarm": "JobCrashes",
}
"""(A permanent refusal by any destination is dead-lettered with its reason: NotifyDeadLetterAlarm.)"""


def _jobwatch_metric(alarm: dict[str, Any], metric: str) -> None:
    assert (alarm["Namespace"], alarm["MetricName"]) == ("Jobwatch", metric)
    assert alarm["Dimensions"] == [{"Name": "service", "Value": "jobwatch"}]
    assert alarm["Statistic"] == "Sum"
    assert alarm["AlarmActions"] == [{"Ref": "OperatorTopic"}]
    assert alarm["OKActions"] == [{"Ref": "OperatorTopic"}]


def test_no_successful_cycle_alarm_breaches_on_silence(
    template: dict[str, Any], resources: dict[str, Any]
) -> None:
    alarm = _props(resources, "NoSuccessfulCycleAlarm")
    _jobwatch_metric(alarm, "CycleCompleted")
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("LessThanThreshold", 1)
    assert alarm["Period"] == 60
    assert alarm["EvaluationPeriods"] == alarm["DatapointsToAlarm"] == {"Ref": "NoCycleAlarmMinutes"}
    # A poller that never runs emits nothing: missing data must count as "no cycle".
    assert alarm["TreatMissingData"] == "breaching"
    parameter = template["Parameters"]["NoCycleAlarmMinutes"]
    assert (parameter["Type"], parameter["Default"]) == ("Number", 10)


@pytest.mark.parametrize(("logical_id", "metric"), list(METRIC_ALARMS.items()))
def test_metric_alarms_fire_on_the_first_occurrence(
    resources: dict[str, Any], logical_id: str, metric: str
) -> None:
    alarm = _props(resources, logical_id)
    _jobwatch_metric(alarm, metric)
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanOrEqualToThreshold", 1)
    assert alarm["TreatMissingData"] == "notBreaching"


# -- sample events ------------------------------------------------------------------------------


def test_env_json_only_overrides_variables_the_template_declares(
    template: dict[str, Any], resources: dict[str, Any]
) -> None:
    """`sam local invoke --env-vars` silently drops variables that the template does not declare."""
    env = json.loads((EVENTS / "env.json").read_text(encoding="utf-8"))
    functions = _functions(resources)
    assert set(env) == set(functions)
    models = {
        "PollerFunction": PollerSettings,
        "PollWorkerFunction": PollerSettings,
        "NotifierFunction": NotifierSettings,
        "ApiFunction": ApiSettings,
        "SlackInteractionsFunction": SlackInteractionSettings,
    }
    declared_globally = set(template["Globals"]["Function"]["Environment"]["Variables"])
    for logical_id, variables in env.items():
        declared = declared_globally | set(
            (functions[logical_id].get("Environment") or {}).get("Variables") or {}
        )
        assert set(variables) <= declared, logical_id
        # ...and gives each function every setting it cannot start without.
        required = {
            env_name(name) for name, field in models[logical_id].model_fields.items() if field.is_required()
        }
        assert required <= set(variables), (logical_id, required - set(variables))
        assert variables["AWS_ENDPOINT_URL"] == "http://host.docker.internal:5000"
        assert variables["JOBWATCH_ALLOW_HTTP_LOOPBACK"] == "true"
        assert all(isinstance(value, str) for value in variables.values())


def test_sqs_sample_carries_an_sns_envelope() -> None:
    assert not (EVENTS / "slack-sender-sqs.json").exists()  # the senders are gone: one notifier
    event = json.loads((EVENTS / "notifier-sqs.json").read_text(encoding="utf-8"))
    (record,) = event["Records"]
    assert record["eventSource"] == "aws:sqs"
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert record["eventSourceARN"].startswith("arn:aws:sqs:")
    assert ":jobwatch-NotifyQueue-" in record["eventSourceARN"]
    assert record["messageAttributes"] == {}  # an original from the topic (no jobwatchDestination): routed
    envelope = json.loads(record["body"])
    assert envelope["Type"] == "Notification"
    assert {"MessageId", "TopicArn", "Subject", "Timestamp", "SignatureVersion", "Signature"} <= set(envelope)
    transition = json.loads(envelope["Message"])
    assert transition["schema"] == "jobwatch.transition/v1"
    # The notifier reads it as it reads every record, with the attributes the poller publishes.
    parsed = transition_from_sqs_body(record["body"])
    assert parsed.to_wire() == transition
    assert parsed.previous_transition_id is not None  # a later transition of its job: order applies
    assert {name: (attr["Type"], attr["Value"]) for name, attr in envelope["MessageAttributes"].items()} == {
        name: (attr["DataType"], attr["StringValue"]) for name, attr in sns_message_attributes(parsed).items()
    }
    assert {"event", "phase", "source", "severity"} <= set(envelope["MessageAttributes"])
    resolved = json.loads((EVENTS / "poller-schedule.resolved.json").read_text(encoding="utf-8"))
    assert set(resolved) == set(SCHEDULE_INPUT)
    assert "<" not in json.dumps(resolved)


# -- SAM CLI ------------------------------------------------------------------------------------


def test_sam_validate_lint(sam: SamCli, tmp_path: Path) -> None:
    result = run_sam(sam, "validate", "--lint", "--template-file", str(TEMPLATE), cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def test_sam_build_produces_an_arm64_layer(sam_build_dir: Path) -> None:
    build = sam_build_dir
    layer = build / "JobwatchLayer" / "python"
    assert (layer / "jobwatch" / "domain" / "model.py").is_file()
    assert not (layer / "jobwatch_tools").exists(), "operator tools must not ship in the layer"
    assert (layer / "httpx").is_dir()
    assert not [path for path in layer.rglob("*jobwatch_devkit*")]
    assert list((layer / "pydantic_core").glob("*aarch64*.so")), "pydantic_core was not built for arm64"
    for function in sorted(FUNCTIONS):
        assert (build / function / "app.py").is_file()
