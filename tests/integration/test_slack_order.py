"""Per-job order at the Slack edge across SQS batches (a standard queue may hand them over swapped)."""

from __future__ import annotations

from jobwatch import service
from jobwatch.adapters import aws
from jobwatch.delivery import deliver_batch
from jobwatch.messages import transition_from_sqs_body
from jobwatch_devkit.harness import LocalDeployment
from jobwatch_devkit.simulator import UpstreamSimulator, state
from jobwatch_devkit.slack_sink import SlackSink


def _records(queue_url: str) -> list[dict[str, str]]:
    messages: list[dict[str, str]] = []
    while True:
        batch = aws.sqs().receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=0)
        received = batch.get("Messages", [])
        if not received:
            return messages
        for message in received:
            messages.append({"messageId": message["MessageId"], "body": message["Body"]})
            aws.sqs().delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


def test_a_later_transition_waits_for_the_one_before_it(
    deployment: LocalDeployment, sim: UpstreamSimulator, sim_url: str, sink: SlackSink
) -> None:
    sim.add_job("weaviate-export", "exp-order", [state("STARTED"), state("SUCCESS")], backend="s3")
    deployment.track(source="weaviate-export", endpoint=sim_url, job_id="exp-order", backend="s3")
    deployment.poll()
    deployment.poll()
    records = _records(deployment.settings.slack_queue_url)
    by_event = {transition_from_sqs_body(r["body"]).event: r for r in records}
    started, succeeded = by_event["STARTED"], by_event["SUCCEEDED"]
    assert transition_from_sqs_body(succeeded["body"]).previous_transition_id == (
        transition_from_sqs_body(started["body"]).transition_id
    )
    deps = service.delivery_deps()

    alone = deliver_batch({"Records": [succeeded]}, deps)  # the later one arrives first, alone
    assert (alone.delivered, alone.failures) == (0, [succeeded["messageId"]])
    assert sink.messages() == []

    first = deliver_batch({"Records": [started]}, deps)
    then = deliver_batch({"Records": [succeeded]}, deps)  # SQS offers it again later
    assert (first.delivered, then.delivered) == (1, 1)
    posted = [m.raw for m in sink.messages()]
    assert len(posted) == 2
    assert "STARTED" in posted[0] and "SUCCEEDED" in posted[1]
