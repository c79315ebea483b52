"""A local jobwatch deployment on moto server: the stack from template.yaml plus a capture queue.

Used by the demo, the integration tests and the benchmark so all three drive the real handlers'
code paths (`jobwatch_tools.local`: the functions' own wiring) the same way. The capture queue
is an ordinary SQS subscriber of the transitions topic: it sees exactly what any subscriber sees.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jobwatch_tools import local
from jobwatch_tools.local import LocalSettings, drain_notify_queue, list_jobs, track_job
from jobwatch_tools.local_stack import create_local_stack

from jobwatch.adapters import aws
from jobwatch.app.poll_cycle import CycleReport
from jobwatch.delivery.records import BatchReport
from jobwatch.domain.model import TrackedJob, Transition

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = REPO_ROOT / "template.yaml"

AWS_TEST_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "JOBWATCH_ALLOW_HTTP_LOOPBACK": "true",
    "JOBWATCH_SLACK_MIN_INTERVAL_S": "0",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_METRICS_NAMESPACE": "Jobwatch",
}


def clear_process_caches() -> None:
    """Forget clients and settings built for a previous environment (tests switch stacks)."""
    local.clear_caches()
    for cached in (
        aws._session,
        aws.dynamodb,
        aws.sns,
        aws.sqs,
        aws.secretsmanager,
    ):
        cached.cache_clear()


@dataclass(frozen=True)
class Email:
    subject: str
    body: str
    event: str
    transition_id: str
    """From the body's `Transition` line: what a reader would quote."""


_TRANSITION_LINE = re.compile(r"^Transition:\s+(\S+)$", re.MULTILINE)


def _drain(queue_url: str) -> Iterator[dict[str, Any]]:
    """The SNS envelopes waiting on a capture queue, deleted as they are read."""
    sqs = aws.sqs()
    while True:
        batch = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0, MessageAttributeNames=["All"]
        ).get("Messages", [])
        if not batch:
            return
        for message in batch:
            yield json.loads(message["Body"])
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


class LocalDeployment:
    def __init__(
        self,
        moto_url: str,
        slack_webhook: str | None,
        *,
        setenv: Callable[[str, str], None] | None = None,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        set_var = setenv or os.environ.__setitem__
        for name, value in {**AWS_TEST_ENV, "AWS_ENDPOINT_URL": moto_url, **(extra_env or {})}.items():
            set_var(name, value)
        clear_process_caches()
        self.env = dict(create_local_stack(TEMPLATE, slack_webhook=slack_webhook))
        for name, value in self.env.items():
            if name not in (extra_env or {}):
                set_var(name, value)
        clear_process_caches()
        self.settings = LocalSettings.from_env()
        self.capture_queue_url = self._subscribe_capture_queue(self.settings.topic_arn, "jobwatch-capture")
        self.email_capture_url = self._subscribe_capture_queue(
            self.settings.email_topic_arn, "jobwatch-email-capture"
        )
        self._published: list[Transition] = []
        self._emails: list[Email] = []

    def _subscribe_capture_queue(self, topic_arn: str, name: str) -> str:
        sqs = aws.sqs()
        url = sqs.create_queue(QueueName=name)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        aws.sns().subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=arn)
        return url

    # -- driving the system -----------------------------------------------------------------------

    def track(self, **fields: Any) -> TrackedJob:
        job, _ = track_job(fields)
        return job

    def poll(self) -> CycleReport:
        return local.poll_once()

    def deliver(self) -> BatchReport:
        """Drain the notifier's queue through its code path (every destination: Slack, e-mail...)."""
        return drain_notify_queue()

    def jobs(self) -> list[TrackedJob]:
        return list_jobs()

    # -- what subscribers saw ---------------------------------------------------------------------

    def published(self) -> list[Transition]:
        """Every transition event any SNS subscriber received so far (drains the capture queue)."""
        for envelope in _drain(self.capture_queue_url):
            self._published.append(Transition.model_validate_json(envelope["Message"]))
        return list(self._published)

    def emails(self) -> list[Email]:
        """Every message an address subscribed to the alert e-mail topic received so far."""
        for envelope in _drain(self.email_capture_url):
            attributes = envelope.get("MessageAttributes") or {}
            body = envelope["Message"]
            found = _TRANSITION_LINE.search(body)
            self._emails.append(
                Email(
                    subject=envelope.get("Subject") or "",
                    body=body,
                    event=(attributes.get("event") or {}).get("Value", ""),
                    transition_id=found.group(1) if found else "",
                )
            )
        return list(self._emails)

    def raw_envelopes(self) -> Iterable[dict[str, Any]]:
        """Undeleted envelopes on the capture queue, for attribute checks (does not consume)."""
        batch = (
            aws.sqs()
            .receive_message(QueueUrl=self.capture_queue_url, MaxNumberOfMessages=10, VisibilityTimeout=0)
            .get("Messages", [])
        )
        return [json.loads(m["Body"]) for m in batch]
