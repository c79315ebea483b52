"""The poll cycle end to end: upstream simulator -> poller -> DynamoDB -> SNS -> SQS -> Slack sink.

Each test drives the real handler code paths (`poll_once`, `drain_notify_queue`)
through `LocalDeployment` and checks the core guarantees with exact counts: one SNS event and one Slack
message per real transition, nothing (not even a DynamoDB write) for a poll that sees no change, terminal
jobs are never polled again, and overlapping poller runs never notify twice.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, cast

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from jobwatch_tools.local import poller_deps, track_job
from jsonschema import Draft202012Validator  # type: ignore[import-untyped,unused-ignore]

from jobwatch.adapters import aws
from jobwatch.adapters.clock import SystemClock
from jobwatch.adapters.dynamodb.jobs import DynamoJobStore
from jobwatch.adapters.http.upstream import HttpUpstream
from jobwatch.adapters.secrets import SecretResolver
from jobwatch.adapters.sns import SnsPublisher
from jobwatch.app.poll_cycle import CycleReport, PollerDeps, run_cycle
from jobwatch.domain.model import SCHEMA_ID, Phase, TrackedJob, Transition
from jobwatch.entrypoints.wiring import CLOCK, secret_resolver
from jobwatch_devkit.fakes import FakeClock
from jobwatch_devkit.harness import REPO_ROOT, LocalDeployment
from jobwatch_devkit.simulator import UpstreamSimulator, hold, state
from jobwatch_devkit.slack_sink import SinkMessage, SlackSink

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

pytestmark = pytest.mark.integration

EXPORT = "weaviate-export"
ZILLIZ = "zilliz-import-v1"
CLUSTER = "in01-3f5c2a"

EVENT_SCHEMA = Draft202012Validator(
    json.loads((REPO_ROOT / "docs/schemas/transition-event.v1.json").read_text())
)


# -- helpers ---------------------------------------------------------------------------------------------


def _tid(job_key: str, version: int) -> str:
    """The id of a transition the job's current life recorded at `version` (docs/decisions.md, D28)."""
    from jobwatch_tools.local import list_jobs

    from jobwatch.domain.transitions import transition_id

    (job,) = [job for job in list_jobs() if job.key == job_key]
    return transition_id(job_key, version, life=job.life)


def _job(store: DynamoJobStore, key: str) -> TrackedJob:
    job = store.get_job(key)
    assert job is not None, f"job {key} is not in the table"
    return job


def _texts(value: Any) -> list[str]:
    """Every `text` string of a Block Kit structure, depth first."""
    if isinstance(value, dict):
        found = [value["text"]] if isinstance(value.get("text"), str) else []
        for item in value.values():
            if isinstance(item, dict | list):
                found += _texts(item)
        return found
    if isinstance(value, list):
        return [text for item in value for text in _texts(item)]
    return []


def _assert_slack_message(message: SinkMessage, *, job_id: str, event: str, kind: str) -> None:
    fallback = message.text
    assert fallback is not None
    assert job_id in fallback and event in fallback and kind in fallback, fallback
    header = message.blocks[0]
    assert header["type"] == "header"
    assert event in header["text"]["text"] and kind in header["text"]["text"]
    blocks = "\n".join(_texts(message.blocks))
    assert f"*Job id*\n`{job_id}`" in blocks
    assert f"*Kind*\n{kind}" in blocks


def _by_job_id(messages: list[SinkMessage], job_ids: list[str]) -> dict[str, SinkMessage]:
    """Slack messages keyed by the job id their `Job id` field names (each names exactly one)."""
    out: dict[str, SinkMessage] = {}
    for message in messages:
        blocks = "\n".join(_texts(message.blocks))
        named = [job_id for job_id in job_ids if f"`{job_id}`" in blocks]
        assert len(named) == 1, blocks
        assert named[0] not in out, f"two Slack messages for {named[0]}"
        out[named[0]] = message
    return out


def _validated_raw_events(deployment: LocalDeployment) -> list[dict[str, Any]]:
    """The events as SQS subscribers receive them (not yet consumed), each checked against the
    published JSON schema (docs/schemas/transition-event.v1.json)."""
    events = [json.loads(envelope["Message"]) for envelope in deployment.raw_envelopes()]
    for event in events:
        EVENT_SCHEMA.validate(event)
    return events


def _nonzero(report: CycleReport) -> dict[str, int]:
    """The report's non-zero counters: comparing this to a literal asserts every other one is zero."""
    skip = ("duration_s", "events", "errors")
    return {name: value for name, value in report.as_dict().items() if name not in skip and value}


def _events(report: CycleReport) -> list[tuple[str, str]]:
    return sorted((event["jobKey"], event["event"]) for event in report.events)


# -- 1. one event and one Slack message per real transition ------------------------------------------------


def test_each_transition_is_published_and_posted_exactly_once(
    deployment: LocalDeployment, sim: UpstreamSimulator, sim_url: str, sink: SlackSink, store: DynamoJobStore
) -> None:
    sim.add_job(
        EXPORT,
        "exp-nightly",
        [
            state("STARTED", repeat=2),
            state("TRANSFERRING", objects=100, repeat=2),
            state("SUCCESS", objects=1000),
        ],
        backend="s3",
    )
    sim.add_job(
        ZILLIZ,
        "job-0427",
        [state(ready=0, repeat=2), state(ready=0.4, repeat=2), state(ready=1)],
        cluster_id=CLUSTER,
    )
    export = deployment.track(
        source=EXPORT, endpoint=sim_url, job_id="exp-nightly", backend="s3", labels={"team": "search"}
    )
    imp = deployment.track(source=ZILLIZ, endpoint=sim_url, job_id="job-0427", cluster_id=CLUSTER)
    kinds = {
        export.key: ("exp-nightly", EXPORT, "Weaviate export"),
        imp.key: ("job-0427", ZILLIZ, "Zilliz Cloud import"),
    }

    # Cycle 1: first observation of both jobs -> STARTED (previous null).
    report = deployment.poll()
    assert _nonzero(report) == {"jobs": 2, "polled": 2, "transitions": 2, "published": 2, "shards_polled": 1}
    assert _events(report) == sorted([(export.key, "STARTED"), (imp.key, "STARTED")])
    # SNS attributes subscribers filter on, as any SQS subscriber sees them.
    attributes = {
        envelope["Subject"]: {name: attr["Value"] for name, attr in envelope["MessageAttributes"].items()}
        for envelope in deployment.raw_envelopes()
    }
    assert sorted(attributes.values(), key=lambda a: a["source"]) == [
        {
            "event": "STARTED",
            "phase": "RUNNING",
            "source": EXPORT,
            "severity": "info",
            "labels": '["team=search"]',
        },
        {"event": "STARTED", "phase": "RUNNING", "source": ZILLIZ, "severity": "info"},
    ]
    raw = _validated_raw_events(deployment)
    assert sorted(event["jobId"] for event in raw) == ["exp-nightly", "job-0427"]
    published = deployment.published()
    assert len(published) == 2
    for event in published:
        job_id, source, _ = kinds[event.job_key]
        assert event.schema_ == SCHEMA_ID
        assert event.to_wire()["schema"] == "jobwatch.transition/v1"
        assert (event.transition_id, event.job_id, event.source) == (_tid(event.job_key, 1), job_id, source)
        assert (event.event, event.severity, event.previous) == ("STARTED", "info", None)
        assert event.current.phase is Phase.RUNNING
        assert event.job.job_id == job_id
    by_key = {event.job_key: event for event in published}
    assert by_key[export.key].current.status == "STARTED"
    assert (by_key[imp.key].current.status, by_key[imp.key].current.progress) == ("ImportRunning", 0.0)
    assert by_key[export.key].job.labels == {"team": "search"}
    delivery = deployment.deliver()
    assert (delivery.delivered, delivery.duplicates, delivery.retried, delivery.dead_lettered) == (2, 0, 0, 0)
    job_kinds = {job_id: kind for job_id, _, kind in kinds.values()}
    started = _by_job_id(sink.messages(), list(job_kinds))
    assert len(sink.messages()) == len(started) == 2
    for job_id, message in started.items():
        _assert_slack_message(message, job_id=job_id, event="STARTED", kind=job_kinds[job_id])
    after_start = {key: _job(store, key) for key in kinds}
    assert {key: job.version for key, job in after_start.items()} == {export.key: 1, imp.key: 1}

    # Cycle 2: the same answers again -> nothing written, published or posted.
    report = deployment.poll()
    assert _nonzero(report) == {"jobs": 2, "polled": 2, "unchanged": 2, "shards_polled": 1}
    assert report.events == []
    assert {key: _job(store, key) for key in kinds} == after_start  # not even updatedAt moved
    assert deployment.published() == published
    assert deployment.deliver().delivered == 0
    assert len(sink.messages()) == 2

    # Cycle 3: news inside the RUNNING phase is never notified. A new status word (TRANSFERRING) is
    # stored at once; moved counters alone (the import at 40 %) wait for the write interval (D40).
    report = deployment.poll()
    assert _nonzero(report) == {"jobs": 2, "polled": 2, "updated": 1, "unchanged": 1, "shards_polled": 1}
    updated = {key: _job(store, key) for key in kinds}
    assert {key: job.version for key, job in updated.items()} == {export.key: 2, imp.key: 1}
    export_snapshot, import_snapshot = updated[export.key].snapshot, updated[imp.key].snapshot
    assert export_snapshot is not None and import_snapshot is not None
    assert (export_snapshot.status, export_snapshot.details["objectsExported"]) == ("TRANSFERRING", 100)
    assert (import_snapshot.phase, import_snapshot.progress) == (Phase.RUNNING, 0.0)
    assert deployment.published() == published
    assert deployment.deliver().delivered == 0

    # Cycle 4: no change again -> no write.
    report = deployment.poll()
    assert _nonzero(report) == {"jobs": 2, "polled": 2, "unchanged": 2, "shards_polled": 1}
    assert {key: _job(store, key) for key in kinds} == updated

    # Cycle 5: both finish -> one SUCCEEDED each, RUNNING -> SUCCEEDED.
    report = deployment.poll()
    assert _nonzero(report) == {"jobs": 2, "polled": 2, "transitions": 2, "published": 2, "shards_polled": 1}
    assert _events(report) == sorted([(export.key, "SUCCEEDED"), (imp.key, "SUCCEEDED")])
    assert [event["event"] for event in _validated_raw_events(deployment)] == ["SUCCEEDED", "SUCCEEDED"]
    all_events = deployment.published()
    assert len(all_events) == 4
    finished = all_events[2:]
    for event in finished:
        job_id, source, _ = kinds[event.job_key]
        assert (event.transition_id, event.event, event.severity) == (
            _tid(event.job_key, updated[event.job_key].version + 1),
            "SUCCEEDED",
            "success",
        )
        assert (event.job_id, event.source, event.schema_) == (job_id, source, SCHEMA_ID)
        assert event.previous is not None and event.previous.phase is Phase.RUNNING
        assert (event.current.phase, event.current.progress) == (Phase.SUCCEEDED, 100.0)
    assert {event.job_key: event.previous.status for event in finished if event.previous} == {
        export.key: "TRANSFERRING",
        imp.key: "ImportRunning",
    }
    delivery = deployment.deliver()
    assert (delivery.delivered, delivery.duplicates) == (2, 0)
    assert len(sink.messages()) == 4
    succeeded = _by_job_id(sink.messages()[2:], list(job_kinds))
    for job_id, message in succeeded.items():
        _assert_slack_message(message, job_id=job_id, event="SUCCEEDED", kind=job_kinds[job_id])
    assert "export finished" in (succeeded["exp-nightly"].text or "")
    assert "import finished" in (succeeded["job-0427"].text or "")

    # Cycle 6: both terminal -> not polled at all.
    before = {job_id: sim.request_count(job_id) for job_id in ("exp-nightly", "job-0427")}
    report = deployment.poll()
    assert _nonzero(report) == {"shards_polled": 1}
    assert before == {"exp-nightly": 5, "job-0427": 5}
    assert {job_id: sim.request_count(job_id) for job_id in before} == before
    assert len(deployment.published()) == 4
    assert deployment.deliver().delivered == 0
    assert len(sink.messages()) == 4
    recorded = sorted((t.transition_id, t.event) for t in store.recent_transitions(export.key))
    assert recorded == [(_tid(export.key, 1), "STARTED"), (_tid(export.key, 3), "SUCCEEDED")]
    assert store.pending_transitions() == []


# -- 2. failures and cancellations ------------------------------------------------------------------------


def test_failed_and_canceled_jobs_alert_once_with_the_error_and_are_not_polled_again(
    deployment: LocalDeployment, sim: UpstreamSimulator, sim_url: str, sink: SlackSink, store: DynamoJobStore
) -> None:
    export_error = "shard Article/x1: disk quota exceeded on node-2"
    import_error = "data/1.parquet: field 'vector' has dim 768, the collection expects 1536"
    sim.add_job(EXPORT, "exp-fail", [state("STARTED"), state("FAILED", error=export_error)], backend="s3")
    sim.add_job(EXPORT, "exp-cancel", [state("STARTED"), state("CANCELED")], backend="s3")
    sim.add_job(
        ZILLIZ,
        "job-bad-dim",
        [state(ready=0.2), state(ready=0.2, error_message=import_error)],
        cluster_id=CLUSTER,
    )
    keys = {
        "exp-fail": deployment.track(source=EXPORT, endpoint=sim_url, job_id="exp-fail", backend="s3").key,
        "exp-cancel": deployment.track(
            source=EXPORT, endpoint=sim_url, job_id="exp-cancel", backend="s3"
        ).key,
        "job-bad-dim": deployment.track(
            source=ZILLIZ, endpoint=sim_url, job_id="job-bad-dim", cluster_id=CLUSTER
        ).key,
    }

    report = deployment.poll()
    assert _nonzero(report) == {"jobs": 3, "polled": 3, "transitions": 3, "published": 3, "shards_polled": 1}
    assert deployment.deliver().delivered == 3

    report = deployment.poll()
    assert _nonzero(report) == {"jobs": 3, "polled": 3, "transitions": 3, "published": 3, "shards_polled": 1}
    assert _events(report) == sorted(
        [(keys["exp-fail"], "FAILED"), (keys["exp-cancel"], "CANCELED"), (keys["job-bad-dim"], "FAILED")]
    )
    events = {event.job_id: event for event in deployment.published()[3:]}
    assert len(deployment.published()) == 6 and sorted(events) == sorted(keys)
    expected = {
        "exp-fail": ("FAILED", "error", Phase.FAILED, "FAILED", export_error),
        "exp-cancel": ("CANCELED", "warning", Phase.CANCELED, "CANCELED", "export was canceled"),
        "job-bad-dim": ("FAILED", "error", Phase.FAILED, "ImportFailed", import_error),
    }
    for job_id, (event_name, severity, phase, status, error) in expected.items():
        event = events[job_id]
        assert (event.event, event.severity, event.transition_id) == (
            event_name,
            severity,
            _tid(keys[job_id], 2),
        )
        assert (event.current.phase, event.current.status, event.current.error) == (phase, status, error)
        assert event.current.progress is None  # a failed/canceled job carries no progress
        assert event.previous is not None and event.previous.phase is Phase.RUNNING
        assert event.previous.error is None

    delivery = deployment.deliver()
    # Three Slack posts and three alert e-mails (FAILED and CANCELED are alert e-mail events).
    assert (delivery.delivered, delivery.duplicates, delivery.dead_lettered) == (6, 0, 0)
    assert sorted(e.event for e in deployment.emails()) == ["CANCELED", "FAILED", "FAILED"]
    posted = _by_job_id(sink.messages()[3:], list(keys))
    assert len(sink.messages()) == 6
    kinds = {
        "exp-fail": "Weaviate export",
        "exp-cancel": "Weaviate export",
        "job-bad-dim": "Zilliz Cloud import",
    }
    for job_id, (event_name, _, _, _, error) in expected.items():
        _assert_slack_message(posted[job_id], job_id=job_id, event=event_name, kind=kinds[job_id])
        error_blocks = [t for t in _texts(posted[job_id].blocks) if t.startswith("*Error*")]
        assert error_blocks == [f"*Error*\n```\n{error}\n```"]

    # Terminal: the next cycles never ask the upstream again.
    assert store.pollable_jobs() == []
    assert {job.spec.job_id: job.snapshot.phase for job in deployment.jobs() if job.snapshot} == {
        "exp-fail": Phase.FAILED,
        "exp-cancel": Phase.CANCELED,
        "job-bad-dim": Phase.FAILED,
    }
    for _ in range(2):
        assert _nonzero(deployment.poll()) == {"shards_polled": 1}
    assert {job_id: sim.request_count(job_id) for job_id in keys} == dict.fromkeys(keys, 2)
    assert {key: _job(store, key).version for key in keys.values()} == dict.fromkeys(keys.values(), 2)
    assert len(deployment.published()) == 6
    assert deployment.deliver().delivered == 0
    assert len(sink.messages()) == 6


# -- 3. a job that already failed when it was registered ---------------------------------------------------


def test_first_observation_of_an_already_failed_job_alerts_once(
    deployment: LocalDeployment, sim: UpstreamSimulator, sim_url: str, sink: SlackSink, store: DynamoJobStore
) -> None:
    sim.add_job(EXPORT, "exp-dead", [state("FAILED", error="backend s3: AccessDenied")], backend="s3")
    sim.add_job(ZILLIZ, "job-dead", [state(ready=0, error_message="bucket not found")], cluster_id=CLUSTER)
    export = deployment.track(source=EXPORT, endpoint=sim_url, job_id="exp-dead", backend="s3")
    imp = deployment.track(source=ZILLIZ, endpoint=sim_url, job_id="job-dead", cluster_id=CLUSTER)

    report = deployment.poll()
    assert _nonzero(report) == {"jobs": 2, "polled": 2, "transitions": 2, "published": 2, "shards_polled": 1}
    assert _events(report) == sorted([(export.key, "FAILED"), (imp.key, "FAILED")])
    events = {event.job_key: event for event in deployment.published()}
    assert len(deployment.published()) == 2
    for key, error in ((export.key, "backend s3: AccessDenied"), (imp.key, "bucket not found")):
        event = events[key]
        assert (event.event, event.previous, event.transition_id) == ("FAILED", None, _tid(key, 1))
        assert (event.current.phase, event.current.error) == (Phase.FAILED, error)
        assert _job(store, key).version == 1
    assert deployment.deliver().delivered == 4  # each to the default Slack webhook and the alert e-mail
    assert sorted(e.transition_id for e in deployment.emails()) == sorted(_tid(k, 1) for k in events)
    posted = _by_job_id(sink.messages(), ["exp-dead", "job-dead"])
    _assert_slack_message(posted["exp-dead"], job_id="exp-dead", event="FAILED", kind="Weaviate export")
    _assert_slack_message(posted["job-dead"], job_id="job-dead", event="FAILED", kind="Zilliz Cloud import")

    assert _nonzero(deployment.poll()) == {"shards_polled": 1}
    assert (sim.request_count("exp-dead"), sim.request_count("job-dead")) == (1, 1)
    assert len(deployment.published()) == 2
    assert deployment.deliver().delivered == 0
    assert len(sink.messages()) == 2


# -- 4. overlapping poller runs ------------------------------------------------------------------------------


class _RendezvousStore(DynamoJobStore):
    """A DynamoJobStore that, having read the pollable jobs, waits until the other run has read them too.

    This makes the overlap deterministic: both runs hold the same versions before either one writes.
    """

    def __init__(self, client: DynamoDBClient, table: str, barrier: threading.Barrier) -> None:
        super().__init__(client, table)
        self._barrier = barrier

    def pollable_jobs(self) -> list[TrackedJob]:
        jobs = super().pollable_jobs()
        self._barrier.wait()
        return jobs


class _AtomicWrites:
    """A DynamoDB client whose writes are applied one at a time, as DynamoDB applies them.

    moto's `transact_write_items` takes no lock and rolls a failed transaction back by restoring a copy
    of the whole table taken when it started, which silently undoes every write other requests made in
    the meantime (moto/dynamodb/models/__init__.py, `transact_write_items`). Under two overlapping
    runs that turns a lost race into an erased winner, and the job is then recorded twice. Real
    DynamoDB applies each conditional write and each transaction atomically; a lock around the write
    calls restores exactly that property and nothing more: reads, polls and publishes still overlap,
    and which run wins each job is still decided by the version conditions.
    """

    _WRITES = frozenset({"put_item", "update_item", "delete_item", "transact_write_items"})

    def __init__(self, client: DynamoDBClient, lock: threading.Lock) -> None:
        self._client = client
        self._lock = lock

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if name not in self._WRITES:
            return attribute

        def write(**kwargs: Any) -> Any:
            with self._lock:
                return attribute(**kwargs)

        return write


_CLIENT_CONFIG = Config(retries={"mode": "standard", "max_attempts": 4}, max_pool_connections=32)


def _independent_deps(
    deployment: LocalDeployment, barrier: threading.Barrier, write_lock: threading.Lock
) -> PollerDeps:
    """What a second Lambda container would have: its own boto3 session, clients, store and caches."""
    session = boto3.session.Session()
    settings = deployment.settings
    dynamodb = _AtomicWrites(session.client("dynamodb", config=_CLIENT_CONFIG), write_lock)
    return PollerDeps(
        settings=settings,
        store=_RendezvousStore(cast("DynamoDBClient", dynamodb), settings.table, barrier),
        publisher=SnsPublisher(session.client("sns", config=_CLIENT_CONFIG), settings.topic_arn),
        secrets=SecretResolver(
            session.client("secretsmanager", config=_CLIENT_CONFIG), settings.secret_cache_s
        ),
        upstream=lambda: HttpUpstream(settings),
        clock=SystemClock(),
    )


def _cycle_on_own_loop(deps: PollerDeps) -> CycleReport:
    return asyncio.run(run_cycle(deps))


def _overlapping_cycles(runs: tuple[PollerDeps, PollerDeps]) -> tuple[CycleReport, CycleReport]:
    """Both runs at once, each on its own thread with its own event loop (as two Lambda invocations)."""
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="poller-run") as pool:
        futures = [pool.submit(_cycle_on_own_loop, deps) for deps in runs]
        first, second = (future.result(timeout=60) for future in futures)
    return first, second


def _assert_one_winner_per_job(reports: tuple[CycleReport, CycleReport], jobs: int) -> None:
    first, second = reports
    assert (first.jobs, second.jobs, first.polled, second.polled) == (jobs, jobs, jobs, jobs)
    assert first.poll_errors == second.poll_errors == 0
    assert first.transitions + second.transitions == jobs
    assert first.published + second.published == jobs
    assert first.conflicts + second.conflicts == jobs
    for report in reports:
        assert report.transitions + report.conflicts == jobs  # every job: recorded here or lost the race
    if jobs == 1:
        assert sorted([(r.transitions, r.conflicts) for r in reports]) == [(0, 1), (1, 0)]


@pytest.mark.parametrize("jobs", [1, 20], ids=["one-job", "twenty-jobs"])
def test_overlapping_runs_publish_each_transition_once(
    deployment: LocalDeployment,
    sim: UpstreamSimulator,
    sim_url: str,
    sink: SlackSink,
    store: DynamoJobStore,
    jobs: int,
) -> None:
    job_ids = [f"exp-race-{n:02d}" for n in range(jobs)]
    keys: dict[str, str] = {}
    for job_id in job_ids:
        # Each step is served to both runs: STARTED twice (round 1), then SUCCESS until released.
        sim.add_job(EXPORT, job_id, [state("STARTED", repeat=2), hold(state("SUCCESS"))], backend="s3")
        keys[deployment.track(source=EXPORT, endpoint=sim_url, job_id=job_id, backend="s3").key] = job_id
    barrier, write_lock = threading.Barrier(2, timeout=30), threading.Lock()
    runs = (
        _independent_deps(deployment, barrier, write_lock),
        _independent_deps(deployment, barrier, write_lock),
    )

    # Round 1: both runs see every job for the first time (null -> RUNNING).
    _assert_one_winner_per_job(_overlapping_cycles(runs), jobs)
    started = deployment.published()
    assert len(started) == jobs
    assert Counter(event.job_key for event in started) == Counter(dict.fromkeys(keys, 1))
    assert {event.transition_id for event in started} == {_tid(key, 1) for key in keys}
    assert {event.event for event in started} == {"STARTED"}
    assert all(event.previous is None for event in started)

    # Round 2: both runs see SUCCESS for every job (RUNNING -> SUCCEEDED).
    _assert_one_winner_per_job(_overlapping_cycles(runs), jobs)
    events = deployment.published()
    assert len(events) == 2 * jobs
    finished = events[jobs:]
    assert Counter(event.job_key for event in finished) == Counter(dict.fromkeys(keys, 1))
    assert {event.transition_id for event in finished} == {_tid(key, 2) for key in keys}
    assert {(event.event, event.current.phase) for event in finished} == {("SUCCEEDED", Phase.SUCCEEDED)}
    assert all(event.previous is not None and event.previous.phase is Phase.RUNNING for event in finished)
    assert {job_id: sim.request_count(job_id) for job_id in job_ids} == dict.fromkeys(job_ids, 4)

    for key in keys:
        assert _job(store, key).version == 2
        assert sorted(t.transition_id for t in store.recent_transitions(key)) == [_tid(key, 1), _tid(key, 2)]
    assert store.pending_transitions() == []

    delivery = deployment.deliver()
    assert (delivery.delivered, delivery.duplicates) == (2 * jobs, 0)
    posted = Counter(
        text.split("`")[1]
        for m in sink.messages()
        for text in _texts(m.blocks)
        if text.startswith("Transition `")
    )
    assert posted == Counter(dict.fromkeys([event.transition_id for event in events], 1))

    report = deployment.poll()
    assert (report.jobs, report.polled) == (0, 0)


# -- 5. registration and API keys ---------------------------------------------------------------------------


def test_tracking_the_same_job_twice_keeps_one_item_and_its_state(
    deployment: LocalDeployment, sim: UpstreamSimulator, sim_url: str, store: DynamoJobStore
) -> None:
    sim.add_job(EXPORT, "exp-twice", [state("STARTED"), state("TRANSFERRING", objects=7)], backend="s3")
    fields = {"source": EXPORT, "endpoint": sim_url, "job_id": "exp-twice", "backend": "s3"}
    first, created = track_job(fields)
    # The same job written differently (trailing slash, padded id, camelCase) is the same job.
    again, created_again = track_job(
        {"source": EXPORT, "endpoint": sim_url + "/", "jobId": " exp-twice ", "backend": "s3"}
    )
    assert (created, created_again) == (True, False)
    assert again == first
    assert [job.key for job in deployment.jobs()] == [first.key]

    report = deployment.poll()
    assert (report.transitions, report.published) == (1, 1)
    polled = _job(store, first.key)
    assert polled.version == 1 and polled.snapshot is not None

    # Re-tracking a job that is already being watched must not reset it (that would re-alert STARTED).
    third, created_third = track_job(fields)
    assert created_third is False
    assert third == polled
    assert _job(store, first.key) == polled
    assert len(deployment.jobs()) == 1

    report = deployment.poll()
    assert (report.updated, report.transitions, report.published) == (1, 0, 0)
    assert [event.event for event in deployment.published()] == ["STARTED"]


def test_api_key_is_read_from_secrets_manager(
    deployment: LocalDeployment,
    sim: UpstreamSimulator,
    sim_url: str,
    sink: SlackSink,
    store: DynamoJobStore,
    stderr_logs: Callable[[], list[dict[str, Any]]],
) -> None:
    secrets = aws.secretsmanager()
    secrets.create_secret(Name="jobwatch/weaviate-prod", SecretString="wv-key-123")
    secrets.create_secret(Name="jobwatch/zilliz-prod", SecretString=json.dumps({"apiKey": "zc-key-456"}))
    secrets.create_secret(Name="jobwatch/weaviate-stale", SecretString="wv-key-rotated-away")
    sim.add_job(EXPORT, "exp-secured", [state("STARTED")], backend="s3", api_key="wv-key-123")
    sim.add_job(ZILLIZ, "job-secured", [state(ready=0.5)], cluster_id=CLUSTER, api_key="zc-key-456")
    sim.add_job(EXPORT, "exp-stale-key", [state("STARTED")], backend="s3", api_key="wv-key-123")
    sim.add_job(EXPORT, "exp-no-secret", [state("STARTED")], backend="s3", api_key="wv-key-123")
    secured = deployment.track(
        source=EXPORT,
        endpoint=sim_url,
        job_id="exp-secured",
        backend="s3",
        secret_name="jobwatch/weaviate-prod",
    )
    imp = deployment.track(
        source=ZILLIZ,
        endpoint=sim_url,
        job_id="job-secured",
        cluster_id=CLUSTER,
        secret_name="jobwatch/zilliz-prod",
    )
    stale = deployment.track(
        source=EXPORT,
        endpoint=sim_url,
        job_id="exp-stale-key",
        backend="s3",
        secret_name="jobwatch/weaviate-stale",
    )
    missing = deployment.track(
        source=EXPORT,
        endpoint=sim_url,
        job_id="exp-no-secret",
        backend="s3",
        allow_missing_secret=True,  # registered before its secret exists: polls fail until it does
        secret_name="jobwatch/not-created",
    )
    stderr_logs()  # forget the registration lines

    report = deployment.poll()
    assert (report.polled, report.transitions, report.published, report.poll_errors) == (4, 2, 2, 2)
    assert sorted((event.job_id, event.event) for event in deployment.published()) == [
        ("exp-secured", "STARTED"),
        ("job-secured", "STARTED"),
    ]
    assert {key: _job(store, key).version for key in (secured.key, imp.key)} == {secured.key: 1, imp.key: 1}
    for key in (stale.key, missing.key):
        job = _job(store, key)
        assert (job.version, job.snapshot) == (0, None)
    # The wrong key reached the upstream and was refused; the missing secret never left jobwatch.
    assert (sim.request_count("exp-stale-key"), sim.request_count("exp-no-secret")) == (1, 0)

    records = stderr_logs()
    failures = {r["jobKey"]: r for r in records if r.get("message") == "poll failed; job phase unchanged"}
    assert sorted(failures) == sorted([stale.key, missing.key])
    assert failures[stale.key]["errorKind"] == "AUTH"
    assert failures[stale.key]["error"] == "AUTH HTTP 401: unauthorized: invalid api key"
    assert failures[missing.key]["errorKind"] == "CONFIG"
    assert "jobwatch/not-created" in failures[missing.key]["error"]
    logged = json.dumps(records)
    for value in ("wv-key-123", "zc-key-456", "wv-key-rotated-away"):
        assert value not in logged  # secret names are logged, values never

    assert deployment.deliver().delivered == 2
    assert len(sink.messages()) == 2
    assert {m.text.split(" · ")[1].split(" (")[0] for m in sink.messages() if m.text} == {
        "Weaviate export exp-secured",
        "Zilliz Cloud import job-secured",
    }


# -- 6. the outbox: a publish that failed is not lost -----------------------------------------------


class _UnavailableSns:
    def publish(self, transition: Transition) -> str:
        raise RuntimeError("SNS is unavailable")


def test_a_transition_whose_publish_failed_is_republished_once_by_a_later_cycle(
    deployment: LocalDeployment, sim: UpstreamSimulator, sim_url: str, sink: SlackSink, store: DynamoJobStore
) -> None:
    sim.add_job(EXPORT, "exp-outbox", [state("STARTED")], backend="s3")
    job = deployment.track(source=EXPORT, endpoint=sim_url, job_id="exp-outbox", backend="s3")
    settings = deployment.settings
    outage = PollerDeps(
        settings=settings,
        store=store,
        publisher=_UnavailableSns(),
        secrets=secret_resolver(settings.secret_cache_s),
        upstream=lambda: HttpUpstream(settings),
        clock=CLOCK,
    )

    report = asyncio.run(run_cycle(outage))
    assert (report.transitions, report.published, report.publish_failures) == (1, 0, 1)
    assert deployment.published() == []
    pending = store.pending_transitions()
    assert [(p.transition.transition_id, p.attempts) for p in pending] == [(_tid(job.key, 1), 1)]
    assert _job(store, job.key).version == 1  # recorded; the next poll sees no change

    # Within the backoff window the entry is left alone.
    report = deployment.poll()
    assert (report.unchanged, report.republished, report.published) == (1, 0, 0)
    assert deployment.published() == []

    # Once it is old enough, the next cycle republishes it, exactly once.
    later = PollerDeps(
        settings=settings,
        store=store,
        publisher=poller_deps().publisher,
        secrets=secret_resolver(settings.secret_cache_s),
        upstream=lambda: HttpUpstream(settings),
        # Past the outbox backoff after one failed attempt (120 s), well within stall_after_s (1800 s):
        # one clock now drives both the outbox and the job's own timing.
        clock=FakeClock(time.time() + 600),
    )
    report = asyncio.run(run_cycle(later))
    assert (report.republished, report.published, report.transitions) == (1, 0, 0)
    assert store.pending_transitions() == []
    for _ in range(2):
        report = deployment.poll()
        assert report.republished == 0
    events = deployment.published()
    assert [(e.transition_id, e.event, e.previous) for e in events] == [(_tid(job.key, 1), "STARTED", None)]
    assert deployment.deliver().delivered == 1
    assert len(sink.messages()) == 1


# -- 7. very large upstream errors ------------------------------------------------------------------------


def _stack_trace(kib: int) -> str:
    """A Java-style stack trace of about `kib` KiB, as a failing import reports it."""
    head = "java.lang.IllegalStateException: bulk insert failed for segment 4471\n"
    frame = "\tat io.milvus.storage.BinlogWriter.flush(BinlogWriter.java:214)\n"
    return head + frame * (kib * 1024 // len(frame))


def test_a_failure_repeated_across_many_files_alerts_once_without_breaking_the_cycle(
    deployment: LocalDeployment, sim: UpstreamSimulator, sim_url: str, sink: SlackSink, store: DynamoJobStore
) -> None:
    # An 8 KiB error is ordinary (messages.py caps errors for SNS and Slack because "an upstream error
    # can be a whole stack trace"), and both APIs repeat it per file / per shard: 60 of them are kept
    # as 50 entries in the snapshot, which is stored in the job item and again in the outbox item.
    trace = _stack_trace(8)
    files = [f"data/part-{n:03d}.parquet" for n in range(60)]
    shards = {"Article": {f"shard{n:03d}": {"status": "FAILED", "error": trace} for n in range(60)}}
    sim.add_job(
        EXPORT, "exp-trace", [state("STARTED"), state("FAILED", error=trace, shards=shards)], backend="s3"
    )
    sim.add_job(
        ZILLIZ,
        "job-trace",
        [state(ready=0.1, files=files), state(ready=0.1, files=files, error_message=trace)],
        cluster_id=CLUSTER,
    )
    sim.add_job(EXPORT, "exp-bystander", [state("STARTED"), state("SUCCESS", objects=9)], backend="s3")
    for job_id in ("exp-trace", "exp-bystander"):
        deployment.track(source=EXPORT, endpoint=sim_url, job_id=job_id, backend="s3")
    deployment.track(source=ZILLIZ, endpoint=sim_url, job_id="job-trace", cluster_id=CLUSTER)
    assert deployment.poll().transitions == 3
    assert deployment.deliver().delivered == 3

    try:
        report = deployment.poll()
    except ClientError as exc:  # a store write the poller does not expect ends the whole cycle
        pytest.fail(f"the poll cycle crashed on a large upstream error: {exc}")
    assert _nonzero(report) == {"jobs": 3, "polled": 3, "transitions": 3, "published": 3, "shards_polled": 1}
    finished = {event.job_id: event for event in deployment.published()[3:]}
    assert len(deployment.published()) == 6
    assert {job_id: event.event for job_id, event in finished.items()} == {
        "exp-trace": "FAILED",
        "job-trace": "FAILED",
        "exp-bystander": "SUCCEEDED",
    }
    for job_id in ("exp-trace", "job-trace"):
        error = finished[job_id].current.error
        assert error is not None and error.startswith("java.lang.IllegalStateException: bulk insert failed")
    assert deployment.deliver().delivered == 5  # three Slack posts, and an alert e-mail per FAILED
    assert len(sink.messages()) == 6
    assert sorted(e.event for e in deployment.emails()) == ["FAILED", "FAILED"]

    report = deployment.poll()  # all three are terminal now
    assert (report.jobs, report.polled, report.transitions) == (0, 0, 0)
    assert len(deployment.published()) == 6
