"""Per-job order at the Slack edge: within an SQS batch it is restored; across batches it is not
(a standard queue; see the closing note and test_fault_injection's xfail)."""

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


def test_each_transition_names_its_predecessor_and_a_batch_is_posted_in_job_order(
    deployment: LocalDeployment, sim: UpstreamSimulator, sim_url: str, sink: SlackSink
) -> None:
    sim.add_job("weaviate-export", "exp-order", [state("STARTED"), state("SUCCESS")], backend="s3")
    deployment.track(source="weaviate-export", endpoint=sim_url, job_id="exp-order", backend="s3")
    deployment.poll()
    deployment.poll()
    records = _records(deployment.settings.slack_queue_url)
    by_event = {transition_from_sqs_body(r["body"]).event: r for r in records}
    started, succeeded = by_event["STARTED"], by_event["SUCCEEDED"]
    first = transition_from_sqs_body(started["body"])
    assert first.previous_transition_id is None
    assert transition_from_sqs_body(succeeded["body"]).previous_transition_id == first.transition_id

    # SQS hands them over swapped in one batch: the sender puts them back in order.
    report = deliver_batch({"Records": [succeeded, started]}, service.delivery_deps())
    assert (report.delivered, report.failures) == (2, [])
    posted = [m.raw for m in sink.messages()]
    assert "STARTED" in posted[0] and "SUCCEEDED" in posted[1]
