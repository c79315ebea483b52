"""One contract for `ports.ThreadStore`, run against `DynamoThreadStore` (moto server) and the
in-memory fake the component tier uses (`jobwatch_devkit.fakes_slack.InMemoryThreadStore`).

What the Slack app channel relies on: a job's root is found again in the same destination, a later
save replaces it (a deleted root gets a new one), destinations and jobs never see each other's
roots, and a root past its retention is gone even before DynamoDB's TTL removes the item.
"""

from __future__ import annotations

import pytest

from jobwatch.adapters import aws
from jobwatch.adapters.dynamodb.threads import DynamoThreadStore
from jobwatch.ports import ThreadRoot, ThreadStore
from jobwatch_devkit.fakes import FakeClock
from jobwatch_devkit.fakes_slack import InMemoryThreadStore
from jobwatch_devkit.harness import LocalDeployment

pytestmark = pytest.mark.integration

DESTINATION = "slack-app.C0123456"
OTHER_DESTINATION = "slack-app.C0999999"
JOB = "weaviate-export#https://w.example.com#s3#exp-1"
OTHER_JOB = "weaviate-export#https://w.example.com#s3#exp-2"
ROOT = ThreadRoot(channel="C0123456", ts="1767225600.000100")
RETENTION_DAYS = 30


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=["dynamodb", "in-memory"])
def threads(request: pytest.FixtureRequest, clock: FakeClock) -> ThreadStore:
    if request.param == "in-memory":
        return InMemoryThreadStore(RETENTION_DAYS, now=clock.now)
    deployment: LocalDeployment = request.getfixturevalue("deployment")
    return DynamoThreadStore(aws.dynamodb(), deployment.settings.table, RETENTION_DAYS, now=clock.now)


def test_a_job_without_a_root_has_none(threads: ThreadStore) -> None:
    assert threads.root(DESTINATION, JOB) is None


def test_a_saved_root_is_found_again(threads: ThreadStore) -> None:
    threads.save_root(DESTINATION, JOB, ROOT)
    assert threads.root(DESTINATION, JOB) == ROOT


def test_a_new_root_replaces_the_old_one(threads: ThreadStore) -> None:
    threads.save_root(DESTINATION, JOB, ROOT)
    replacement = ThreadRoot(channel="C0123456", ts="1767225700.000200")
    threads.save_root(DESTINATION, JOB, replacement)
    assert threads.root(DESTINATION, JOB) == replacement


def test_destinations_and_jobs_keep_their_own_roots(threads: ThreadStore) -> None:
    other = ThreadRoot(channel="C0999999", ts="1767225600.000300")
    threads.save_root(DESTINATION, JOB, ROOT)
    threads.save_root(OTHER_DESTINATION, JOB, other)
    assert threads.root(DESTINATION, JOB) == ROOT
    assert threads.root(OTHER_DESTINATION, JOB) == other
    assert threads.root(DESTINATION, OTHER_JOB) is None


def test_a_root_expires_after_the_retention(threads: ThreadStore, clock: FakeClock) -> None:
    threads.save_root(DESTINATION, JOB, ROOT)
    clock.advance(RETENTION_DAYS * 86400 - 60)
    assert threads.root(DESTINATION, JOB) == ROOT
    clock.advance(120)
    assert threads.root(DESTINATION, JOB) is None
    threads.save_root(DESTINATION, JOB, ROOT)  # the job's next message starts a new thread
    assert threads.root(DESTINATION, JOB) == ROOT


def test_the_dynamodb_item_has_the_documented_shape(request: pytest.FixtureRequest, clock: FakeClock) -> None:
    deployment: LocalDeployment = request.getfixturevalue("deployment")
    table = deployment.settings.table
    DynamoThreadStore(aws.dynamodb(), table, RETENTION_DAYS, now=clock.now).save_root(DESTINATION, JOB, ROOT)
    item = aws.dynamodb().get_item(
        TableName=table, Key={"pk": {"S": f"THREAD#{DESTINATION}#{JOB}"}, "sk": {"S": "ROOT"}}
    )["Item"]
    assert item["channel"] == {"S": ROOT.channel} and item["ts"] == {"S": ROOT.ts}
    assert int(item["expiresAt"]["N"]) == int(clock.now()) + RETENTION_DAYS * 86400
    assert "pollShard" not in item and "outboxShard" not in item
