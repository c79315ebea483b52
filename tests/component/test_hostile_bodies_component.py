"""Hostile or broken upstream bodies through a whole poll cycle, for every source, on the fakes.

A body about another job (with a terminal status), a body stating its status twice, and a body
nested past MAX_JSON_DEPTH are each a poll error: the job keeps its phase, snapshot and version,
and nothing is published. The same source answering properly afterwards still moves the job.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest

from jobwatch.domain.model import JobSpec
from jobwatch.sources import source_names
from jobwatch.sources.base import MAX_JSON_DEPTH, HttpResponse
from jobwatch_devkit.component import ENDPOINT, World


@dataclass(frozen=True)
class Hostile:
    """How one source is asked, and its bodies: running and finished for `job_id`, in its own shape."""

    source: str
    job_id: str
    fields: dict[str, str]
    running: dict[str, Any]
    finished: dict[str, Any]
    id_at: tuple[str, ...]
    status_key: str
    """The phase-deciding key, as it appears once in `finished`'s JSON."""


def _weaviate(status: str, job_id: str, **extra: Any) -> dict[str, Any]:
    return {"id": job_id, "backend": "s3", "path": f"s3://bucket/{job_id}", "status": status, **extra}


def _envelope(code: int, **data: Any) -> dict[str, Any]:
    return {"code": code, "data": {"collectionName": "c", "details": [], **data}}


def _cases() -> list[Hostile]:
    zilliz = {"cluster_id": "in01-hostile"}
    return [
        Hostile(
            "weaviate-export",
            "exp-hostile",
            {"backend": "s3"},
            _weaviate("TRANSFERRING", "exp-hostile"),
            _weaviate("SUCCESS", "exp-hostile"),
            ("id",),
            "status",
        ),
        Hostile(
            "weaviate-backup",
            "bak-hostile",
            {"backend": "s3"},
            _weaviate("STARTED", "bak-hostile"),
            _weaviate("FAILED", "bak-hostile", error="disk full"),
            ("id",),
            "status",
        ),
        Hostile(
            "weaviate-restore",
            "res-hostile",
            {"backend": "s3"},
            _weaviate("TRANSFERRING", "res-hostile"),
            _weaviate("SUCCESS", "res-hostile"),
            ("id",),
            "status",
        ),
        Hostile(
            "zilliz-import-v1",
            "job-v1hostile",
            zilliz,
            _envelope(200, jobId="job-v1hostile", readyPercentage=0.25, errorMessage=None),
            _envelope(200, jobId="job-v1hostile", readyPercentage=1, errorMessage=None),
            ("data", "jobId"),
            "readyPercentage",
        ),
        Hostile(
            "zilliz-import-v2",
            "job-v2hostile",
            zilliz,
            _envelope(0, jobId="job-v2hostile", state="Importing", progress=30),
            _envelope(0, jobId="job-v2hostile", state="Completed", progress=100),
            ("data", "jobId"),
            "state",
        ),
        Hostile(
            "milvus-import",
            "451910421389390804",
            {},
            _envelope(0, jobId="451910421389390804", state="Importing", progress=30),
            _envelope(0, jobId="451910421389390804", state="Failed", progress=0, reason="timeout"),
            ("data", "jobId"),
            "state",
        ),
        Hostile(
            "pinecone-import",
            "101",
            {},
            {"id": "101", "status": "InProgress", "percentComplete": 20.0},
            {"id": "101", "status": "Completed", "percentComplete": 100.0},
            ("id",),
            "status",
        ),
    ]


CASES = _cases()
BY_SOURCE = [pytest.param(case, id=case.source) for case in CASES]


def _answer(raw: bytes) -> HttpResponse:
    return HttpResponse(200, raw, {"content-type": "application/json"})


def _json(body: Any) -> HttpResponse:
    return _answer(json.dumps(body).encode())


def _naming(body: dict[str, Any], id_at: tuple[str, ...], job_id: str) -> dict[str, Any]:
    copy: dict[str, Any] = json.loads(json.dumps(body))
    holder = copy
    for key in id_at[:-1]:
        holder = holder[key]
    holder[id_at[-1]] = job_id
    return copy


def _doubled_status(case: Hostile) -> bytes:
    """The finished body with its phase key stated twice: the running value first, the final one last."""
    running = json.dumps(case.running)
    finished = json.dumps(case.finished)
    key = json.dumps(case.status_key) + ": "
    first = running[running.index(key) :].split(",", 1)[0].rstrip("}")
    assert finished.count(key) == 1
    return finished.replace(key, f"{first}, {key}", 1).encode()


def _too_deep(case: Hostile) -> bytes:
    value: Any = "bottom"
    for _ in range(MAX_JSON_DEPTH):
        value = [value]
    return json.dumps({**case.finished, "extra": value}).encode()


def _track(world: World, case: Hostile) -> str:
    spec = JobSpec(source=case.source, endpoint=ENDPOINT, job_id=case.job_id, **case.fields)
    return world.track(spec).key


def test_every_source_has_a_case() -> None:
    assert sorted(case.source for case in CASES) == source_names()


@pytest.mark.parametrize("case", BY_SOURCE)
def test_a_final_status_of_another_job_never_reaches_a_new_job(case: Hostile) -> None:
    world = World()
    key = _track(world, case)
    world.upstream.script(case.job_id, [_json(_naming(case.finished, case.id_at, "someone-else"))])

    report = world.cycle()

    assert (report.polled, report.poll_errors, report.transitions, report.published) == (1, 1, 0, 0)
    assert report.errors[0]["error"] == (
        f"INVALID_BODY: the answer is about job 'someone-else', not {case.job_id!r}"
    )
    job = world.store.get_job(key)
    assert job is not None and (job.snapshot, job.version) == (None, 0)
    assert world.publisher.published == []


@pytest.mark.parametrize(
    "hostile",
    ["another-job", "doubled-status", "too-deep"],
)
@pytest.mark.parametrize("case", BY_SOURCE)
def test_a_hostile_answer_leaves_a_running_job_as_it_was(case: Hostile, hostile: str) -> None:
    world = World()
    key = _track(world, case)
    bad = {
        "another-job": _json(_naming(case.finished, case.id_at, "someone-else")),
        "doubled-status": _answer(_doubled_status(case)),
        "too-deep": _answer(_too_deep(case)),
    }[hostile]
    world.upstream.script(case.job_id, [_json(case.running), bad, bad, _json(case.finished)])
    first = world.cycle()
    assert first.transitions == 1
    before = world.store.get_job(key)
    published = list(world.publisher.published)
    assert before is not None and before.snapshot is not None and not before.snapshot.phase.terminal

    report = world.cycle()

    assert (report.poll_errors, report.transitions, report.published) == (1, 0, 0)
    expected_kind = "TOO_DEEP" if hostile == "too-deep" else "INVALID_BODY"
    assert report.errors[0]["error"].startswith(expected_kind)
    after = world.store.get_job(key)
    assert after is not None
    assert (after.snapshot, after.version, after.changed_at) == (
        before.snapshot,
        before.version,
        before.changed_at,
    )
    assert world.publisher.published == published

    world.cycle()  # the second hostile answer
    recovered = world.cycle()  # then the job's own final status moves it, once
    assert recovered.transitions >= 1
    final = world.store.get_job(key)
    assert final is not None and final.snapshot is not None and final.snapshot.phase.terminal
    assert [event for job_id, event in world.publisher.events() if job_id == case.job_id][-1] in (
        "SUCCEEDED",
        "FAILED",
    )
