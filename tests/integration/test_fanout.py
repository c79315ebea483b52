"""Fan-out on the real parts (D44): moto server's SQS and DynamoDB, the upstream simulator on a socket,
the scheduled poller and the poll worker run through their entry points as the functions run them.

What is checked with exact counts: the coordinator queues one order per shard; each worker polls only
its shard; every job is polled once per tick; an order delivered again, an order of an older tick and
a message that is not an order change nothing (the last is handed back to SQS for its dead-letter
queue); and `jobwatch upgrade` moves jobs tracked under one shard layout to another.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import boto3
import pytest

from jobwatch.adapters import aws
from jobwatch.adapters.clock import utc_iso
from jobwatch.adapters.dynamodb.jobs import DynamoJobStore
from jobwatch.adapters.dynamodb.leases import DynamoShardLeases
from jobwatch.app.fanout import read_order
from jobwatch.domain.shards import ShardLayout
from jobwatch.entrypoints import poll_worker, poller
from jobwatch.settings import PollerSettings
from jobwatch_devkit.harness import LocalDeployment
from jobwatch_devkit.simulator import UpstreamSimulator, state

pytestmark = pytest.mark.integration

EXPORT = "weaviate-export"
SHARDS = 4
JOBS = 12


@pytest.fixture
def fan_out(
    make_deployment: Callable[..., LocalDeployment], monkeypatch: pytest.MonkeyPatch
) -> tuple[LocalDeployment, str]:
    deployment = make_deployment(
        {
            "JOBWATCH_POLL_SHARDS": str(SHARDS),
            "JOBWATCH_ENDPOINT_SPREAD": "2",
            "JOBWATCH_ADAPTIVE_POLLING": "false",
        }
    )
    queue_url = boto3.client("sqs").create_queue(QueueName="jobwatch-shard-orders")["QueueUrl"]
    monkeypatch.setenv("JOBWATCH_SHARD_QUEUE_URL", queue_url)
    return deployment, queue_url


def _endpoints(sim_url: str) -> list[str]:
    """Two endpoints of one simulator: one by address, one by name (distinct to the shard layout)."""
    return [sim_url, sim_url.replace("127.0.0.1", "localhost")]


def _track_fleet(deployment: LocalDeployment, sim: UpstreamSimulator, sim_url: str) -> list[str]:
    ids = []
    for index in range(JOBS):
        job_id = f"exp-{index:02d}"
        sim.add_job(EXPORT, job_id, [state("STARTED")], backend="s3")
        deployment.track(source=EXPORT, endpoint=_endpoints(sim_url)[index % 2], job_id=job_id, backend="s3")
        ids.append(job_id)
    return ids


class _Context:
    def __init__(self, request_id: str) -> None:
        self.aws_request_id = request_id

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def _receive(queue_url: str) -> list[dict[str, Any]]:
    sqs = boto3.client("sqs")
    records: list[dict[str, Any]] = []
    while batch := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", []):
        records += [{"messageId": m["MessageId"], "body": m["Body"]} for m in batch]
        for message in batch:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return records


def _tick(
    deployment: LocalDeployment, queue_url: str, tick_s: float
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """One scheduled run with a shard queue: the coordinator's counts and the orders it queued."""
    deps = poller.wire(PollerSettings.from_env())
    report = poller.run(deps, {"scheduledTime": utc_iso(tick_s)}, _Context("coordinator"))
    return report.counts(), _receive(queue_url)


def _work(records: list[dict[str, Any]], holder: str = "worker") -> list[dict[str, str]]:
    deps = poll_worker.cold_start()
    failures: list[dict[str, str]] = []
    for record in records:  # one order per invocation, as the event source's BatchSize 1 delivers
        failures += poll_worker.run(deps, {"Records": [record]}, _Context(holder))["batchItemFailures"]
    return failures


def test_the_coordinator_orders_every_shard_and_workers_poll_each_job_once(
    fan_out: tuple[LocalDeployment, str], sim: UpstreamSimulator, sim_url: str
) -> None:
    deployment, queue_url = fan_out
    ids = _track_fleet(deployment, sim, sim_url)
    tick = float(int(time.time()))

    counts, orders = _tick(deployment, queue_url, tick)

    assert (counts["orders_sent"], counts["polled"]) == (SHARDS, 0)
    assert sorted(read_order(o["body"]).shard for o in orders) == list(range(SHARDS))
    assert _work(orders) == []
    assert [sim.request_count(job_id) for job_id in ids] == [1] * JOBS
    assert [event for _, event in _events(deployment)] == ["STARTED"] * JOBS

    # SQS delivers every order again, and the schedule fires twice: nothing is polled twice this tick
    assert _work(orders, holder="redelivered") == []
    _, again = _tick(deployment, queue_url, tick)
    assert _work(again, holder="second-coordinator") == []
    assert [sim.request_count(job_id) for job_id in ids] == [1] * JOBS


def test_an_older_ticks_order_after_a_newer_one_polls_nothing(
    fan_out: tuple[LocalDeployment, str], sim: UpstreamSimulator, sim_url: str
) -> None:
    deployment, queue_url = fan_out
    ids = _track_fleet(deployment, sim, sim_url)
    now = float(int(time.time()))
    _, older = _tick(deployment, queue_url, now - 30)
    _, newer = _tick(deployment, queue_url, now)

    assert _work(newer) == [] and _work(older, holder="late") == []

    assert [sim.request_count(job_id) for job_id in ids] == [1] * JOBS


def test_a_message_that_is_not_an_order_goes_back_to_sqs_and_changes_nothing(
    fan_out: tuple[LocalDeployment, str], sim: UpstreamSimulator, sim_url: str
) -> None:
    deployment, _ = fan_out
    ids = _track_fleet(deployment, sim, sim_url)

    failures = _work([{"messageId": "m-1", "body": '{"shard": "all"}'}])

    assert failures == [{"itemIdentifier": "m-1"}]
    assert [sim.request_count(job_id) for job_id in ids] == [0] * JOBS


def test_a_shard_lease_goes_to_one_taker_per_tick_and_never_back_in_time(
    fan_out: tuple[LocalDeployment, str],
) -> None:
    leases = DynamoShardLeases(aws.dynamodb(), PollerSettings.from_env().table)

    assert leases.take(2, 1_000.0, "a") is True
    assert leases.take(2, 1_000.0, "b") is False
    assert leases.take(2, 940.0, "late") is False
    assert leases.take(3, 1_000.0, "c") is True
    assert leases.take(2, 1_060.0, "next") is True


def test_upgrade_moves_jobs_tracked_under_one_shard_to_their_shards(
    make_deployment: Callable[..., LocalDeployment], sim: UpstreamSimulator, sim_url: str
) -> None:
    deployment = make_deployment()  # one shard: every job under `ACTIVE`
    _track_fleet(deployment, sim, sim_url)
    table = PollerSettings.from_env().table
    spread = DynamoJobStore(aws.dynamodb(), table, layout=ShardLayout(SHARDS, 2))
    before = [len([j for page in spread.pollable_pages([s]) for j in page]) for s in range(SHARDS)]

    moved = spread.rebalance_poll_shards()

    after = [[j.key for page in spread.pollable_pages([s]) for j in page] for s in range(SHARDS)]
    assert before == [JOBS, 0, 0, 0]
    assert moved == JOBS - len(after[0]) and moved > 0
    assert sorted(k for keys in after for k in keys) == sorted(j.key for j in deployment.jobs())
    assert all(
        spread.layout.shard_of(spread.get_job(k).spec.endpoint, k) == s
        for s, ks in enumerate(after)
        for k in ks
    )  # type: ignore[union-attr]
    assert spread.rebalance_poll_shards() == 0


def _events(deployment: LocalDeployment) -> list[tuple[str, str]]:
    return [(t.job_key, t.event) for t in deployment.published()]
