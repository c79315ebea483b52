"""Acting from Slack against moto server: signed clicks snooze, mute and untrack a stored job; a forged
or replayed one changes nothing. The function is wired exactly as its cold start wires it (the local
stack's environment: the table, and the signing secret the template declares, given a test value
here); the message update goes to the Slack sink as Slack's `response_url` would take it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import pytest

from jobwatch.adapters import aws
from jobwatch.adapters.dynamodb.jobs import DynamoJobStore
from jobwatch.adapters.dynamodb.replays import DynamoReplayGuard
from jobwatch.app.slack_interactions import SlackInteractions
from jobwatch.domain.model import TrackedJob
from jobwatch.domain.slack_interaction import ACTED_BLOCK_ID
from jobwatch.entrypoints import slack_interactions
from jobwatch.entrypoints.wiring import job_store
from jobwatch_devkit.fakes import InMemoryReplayGuard
from jobwatch_devkit.harness import LocalDeployment
from jobwatch_devkit.slack_sink import SlackSink

pytestmark = pytest.mark.integration

SECRET = "jobwatch-integration-signing-secret"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """Slack's v0 signature, computed here with hmac (not with the code under test)."""
    return (
        "v0="
        + hmac.new(secret.encode(), b"v0:" + timestamp.encode() + b":" + body, hashlib.sha256).hexdigest()
    )


def click_event(key: str, action_id: str, response_url: str, *, secret: str = SECRET) -> dict[str, Any]:
    payload = {
        "type": "block_actions",
        "user": {"id": "U0ANA00001", "username": "ana"},
        "team": {"id": "T0JOBWATCH"},
        "channel": {"id": "C0SEARCH01"},
        "container": {"type": "message", "message_ts": "1767225000.000100"},
        "message": {
            "text": "▶️ RUNNING · Weaviate export nightly",
            "blocks": [
                {"type": "header", "text": {"type": "plain_text", "text": "▶️ RUNNING · Weaviate export"}}
            ],
        },
        "response_url": response_url,
        "actions": [{"action_id": action_id, "block_id": "jobwatch_actions", "value": key, "type": "button"}],
    }
    body = urlencode({"payload": json.dumps(payload)})
    timestamp = str(int(time.time()))
    return {
        "resource": "/slack/interactions",
        "httpMethod": "POST",
        "headers": {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": timestamp,
            "X-Slack-Signature": sign(secret, timestamp, body.encode()),
        },
        "requestContext": {"identity": {"sourceIp": "192.0.2.44"}},
        "body": body,
        "isBase64Encoded": False,
    }


@pytest.fixture
def slack_deployment(make_deployment: Callable[..., LocalDeployment], sink: SlackSink) -> LocalDeployment:
    deployment = make_deployment({"JOBWATCH_SLACK_RESPONSE_URL_PREFIX": sink.base_url + "/"})
    secret_arn = deployment.env["JOBWATCH_SLACK_SIGNING_SECRET"]
    assert "jobwatch-slack/signing-secret" in secret_arn  # the template's secret, created locally
    aws.secretsmanager().put_secret_value(SecretId=secret_arn, SecretString=SECRET)
    return deployment


@pytest.fixture
def interactions(slack_deployment: LocalDeployment) -> SlackInteractions:
    return slack_interactions.cold_start()


def _send(interactions: SlackInteractions, event: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    response = slack_interactions.handle(event, None, interactions)
    return int(response["statusCode"]), json.loads(response["body"])


def _job(deployment: LocalDeployment, sim_url: str) -> tuple[DynamoJobStore, TrackedJob]:
    job = deployment.track(source="weaviate-export", endpoint=sim_url, job_id="nightly", backend="s3")
    return job_store(deployment.settings), job


def test_a_signed_snooze_snoozes_the_stored_job_and_updates_the_message(
    slack_deployment: LocalDeployment, interactions: SlackInteractions, sim_url: str, sink: SlackSink
) -> None:
    store, job = _job(slack_deployment, sim_url)
    event = click_event(job.key, "jobwatch_snooze", sink.url)

    status, body = _send(interactions, event)
    assert (status, body["ok"], body["by"]) == (200, True, "slack:ana (U0ANA00001)")
    assert body["messageUpdated"] is True
    stored = store.get_job(job.key)
    assert stored is not None
    assert stored.quiet.snoozed_by == "slack:ana (U0ANA00001)"
    assert stored.quiet.snoozed_until == body["snoozedUntil"] is not None
    assert stored.version == job.version + 1

    (update,) = sink.messages()
    assert update.accepted and update.payload["replace_original"] is True
    acted = next(b for b in update.blocks if b.get("block_id") == ACTED_BLOCK_ID)
    assert acted["elements"][0]["text"].startswith("💤 Snoozed by <@U0ANA00001>")

    # The same signed request again: refused, nothing written or sent.
    status, body = _send(interactions, event)
    assert (status, body) == (409, {"ok": False, "message": "request already handled (replayed)"})
    assert store.get_job(job.key) == stored
    assert len(sink.messages()) == 1
    seen = aws.dynamodb().get_item(
        TableName=slack_deployment.settings.table,
        Key={"pk": {"S": "SLACKREQ#" + event["headers"]["X-Slack-Signature"]}, "sk": {"S": "SEEN"}},
    )["Item"]
    assert int(seen["expiresAt"]["N"]) == int(event["headers"]["X-Slack-Request-Timestamp"]) + 300 + 60


def test_a_forged_click_changes_nothing_and_a_signed_mute_then_untrack_apply(
    slack_deployment: LocalDeployment, interactions: SlackInteractions, sim_url: str, sink: SlackSink
) -> None:
    store, job = _job(slack_deployment, sim_url)

    for action in ("jobwatch_mute", "jobwatch_untrack"):
        forged = click_event(job.key, action, sink.url, secret="not-the-signing-secret")
        status, body = _send(interactions, forged)
        assert (status, body) == (401, {"ok": False, "message": "signature does not match"})
    assert store.get_job(job.key) == job
    assert sink.messages() == []

    status, body = _send(interactions, click_event(job.key, "jobwatch_mute", sink.url))
    assert (status, body["action"]) == (200, "mute")
    muted = store.get_job(job.key)
    assert muted is not None and muted.quiet.muted and muted.quiet.muted_by == "slack:ana (U0ANA00001)"

    status, body = _send(interactions, click_event(job.key, "jobwatch_untrack", sink.url))
    assert (status, body["action"]) == (200, "untrack")
    assert store.get_job(job.key) is None
    assert slack_deployment.jobs() == []
    assert [m.payload["replace_original"] for m in sink.messages()] == [True, True]


def test_a_response_url_outside_the_allowed_prefix_is_not_followed(
    slack_deployment: LocalDeployment, interactions: SlackInteractions, sim_url: str, sink: SlackSink
) -> None:
    store, job = _job(slack_deployment, sim_url)
    status, body = _send(
        interactions, click_event(job.key, "jobwatch_mute", "http://169.254.169.254/latest/")
    )
    assert (status, body["messageUpdated"]) == (200, False)  # applied; the message is just not updated
    muted = store.get_job(job.key)
    assert muted is not None and muted.quiet.muted


def test_the_replay_guard_and_its_fake_keep_the_same_promise(slack_deployment: LocalDeployment) -> None:
    for guard in (DynamoReplayGuard(aws.dynamodb(), slack_deployment.settings.table), InMemoryReplayGuard()):
        assert guard.first_use("v0=abc", 2_000_000_000) is True
        assert guard.first_use("v0=abc", 2_000_000_000) is False
        assert guard.first_use("v0=abd", 2_000_000_000) is True
