"""`jobwatch check` against every reference sample, served verbatim by the upstream simulator.

The contract tests (`tests/contract/test_reference_samples.py`) parse each sample in memory; this
file proves the same outcome end to end: the simulator answers the real request (method, path, query
or JSON body, headers) with the sample's exact body and HTTP status, and `jobwatch check SOURCE ...
--json` runs in process. A status sample must print the expected normalized snapshot; an error sample
must exit 2 with one stderr line naming the cause (kind, HTTP status, API code).

One source of truth: the samples come from the contract conftest's discovery and the expectations from
the contract module's `EXPECTED` table (both loaded from their files below, never copied). A sample the
contract classifies as not a status response (create/list answers, request bodies, a 204) is listed by
`test_sample_that_is_not_a_status_response`; every other sample is a case here.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from jobwatch_tools.cli import main
from jobwatch_tools.local import clear_caches

from jobwatch.domain.model import Snapshot, bounded
from jobwatch.sources import get_source
from jobwatch.sources.base import HttpResponse
from jobwatch_devkit.simulator import UpstreamSimulator, fault_http

pytestmark = pytest.mark.integration

_CONTRACT_DIR = Path(__file__).resolve().parents[1] / "contract"


def _same_file(module: ModuleType | None, path: Path) -> bool:
    return module is not None and Path(getattr(module, "__file__", "") or "").resolve() == path


def _contract_tests() -> ModuleType:
    """The contract test module, as pytest imports it (basename, its folder on sys.path): the same
    object when pytest already collected it, else imported the same way (so pytest still rewrites its
    asserts if it collects it later)."""
    path = _CONTRACT_DIR / "test_reference_samples.py"
    loaded = sys.modules.get(path.stem)
    if _same_file(loaded, path):
        assert loaded is not None
        return loaded
    sys.path.insert(0, str(_CONTRACT_DIR))
    try:
        module = importlib.import_module(path.stem)
    finally:
        sys.path.remove(str(_CONTRACT_DIR))
    assert _same_file(module, path), module
    return module


def _contract_discovery() -> ModuleType:
    """The contract conftest under a private name (`conftest` is whichever conftest pytest loaded last);
    only its plain functions are used, it is never registered as a plugin here."""
    name, path = "_jobwatch_contract_discovery", _CONTRACT_DIR / "conftest.py"
    loaded = sys.modules.get(name)
    if loaded is not None:
        return loaded
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


contract = _contract_tests()
"""Expectation tables (`EXPECTED`, `Snap`, `Err`, `NotApplicable`) and source names."""
discovery = _contract_discovery()
"""`discover_samples()` and `Sample`."""

Capture = pytest.CaptureFixture[str]

JOB_ID = "reference-sample"
CLUSTER = "inxx-xxxxxxxxxxxxxxx"
BACKUP_OPTIONS = ("--option", "bucket=my-backup-bucket", "--option", "path=backups")
SOURCE_ARGS: dict[str, tuple[str, ...]] = {
    contract.EXPORT: ("--backend", "s3"),
    contract.BACKUP: ("--backend", "s3", *BACKUP_OPTIONS),
    contract.RESTORE: ("--backend", "s3", *BACKUP_OPTIONS),
    contract.V1: ("--cluster-id", CLUSTER),
    contract.V2: ("--cluster-id", CLUSTER),
    contract.MILVUS: ("--option", "dbName=default"),
    contract.PINECONE: ("--option", "apiVersion=2025-10"),
}
"""What `jobwatch check` needs besides endpoint and job id, per source (with the optional options)."""


@dataclass(frozen=True)
class Case:
    """One sample served to one source with one HTTP status, and what `check` must make of it."""

    sample: Any
    """A `Sample` of the contract conftest: id, family, http_status, body."""
    expected: Any
    """The contract's `Snap` or `Err` for it."""

    @property
    def source(self) -> str:
        return str(self.expected.source)

    @property
    def http_status(self) -> int:
        status = (
            self.expected.http_status if self.expected.http_status is not None else self.sample.http_status
        )
        assert status is not None, f"{self.sample.id}: no HTTP status in the sample or its expectation"
        return int(status)

    @property
    def body(self) -> str:
        """The sample's body as JSON text (a re-serialization of the stored value, key order kept)."""
        return json.dumps(self.sample.body, ensure_ascii=False)

    @property
    def id(self) -> str:
        return f"{self.sample.id} -> {self.source} HTTP {self.http_status}"

    @property
    def job_id(self) -> str:
        """The job the sample names (`id`, or `data.jobId`): the poller refuses an answer about
        another job, so the sample is served under its own id; samples naming none use JOB_ID."""
        body = self.sample.body if isinstance(self.sample.body, dict) else {}
        data = body.get("data")
        named = body.get("id") or (data.get("jobId") if isinstance(data, dict) else None)
        return str(named) if named else JOB_ID


def _expectations(sample: Any) -> tuple[Any, ...]:
    expectation = contract.EXPECTED.get(sample.id)
    if expectation is None:
        return ()
    return expectation if isinstance(expectation, tuple) else (expectation,)


SAMPLES: list[Any] = discovery.discover_samples()
CASES: list[Case] = [
    Case(sample, expected)
    for sample in SAMPLES
    for expected in _expectations(sample)
    if not isinstance(expected, contract.NotApplicable)
]
SNAPSHOT_CASES = [case for case in CASES if isinstance(case.expected, contract.Snap)]
ERROR_CASES = [case for case in CASES if isinstance(case.expected, contract.Err)]


@pytest.fixture
def check_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Settings for `check` alone: loopback http allowed, one-second timeouts. No AWS is touched."""
    monkeypatch.setenv("JOBWATCH_ALLOW_HTTP_LOOPBACK", "true")
    monkeypatch.setenv("JOBWATCH_CONNECT_TIMEOUT_S", "1")
    monkeypatch.setenv("JOBWATCH_READ_TIMEOUT_S", "1")
    clear_caches()
    yield
    clear_caches()


def _serve_and_check(
    sim: UpstreamSimulator, sim_url: str, capsys: Capture, case: Case
) -> tuple[int, str, str]:
    """Script the sample as the job's only answer, run `jobwatch check ... --json`: (code, out, err)."""
    sim.add_job(
        case.source,
        case.job_id,
        [fault_http(case.http_status, case.body, content_type="application/json")],
        backend="s3" if case.source in (contract.EXPORT, contract.BACKUP, contract.RESTORE) else None,
        cluster_id=CLUSTER if case.source in (contract.V1, contract.V2) else None,
    )
    argv = [
        "check",
        case.source,
        "--endpoint",
        sim_url,
        "--job-id",
        case.job_id,
        *SOURCE_ARGS[case.source],
        "--json",
    ]
    capsys.readouterr()
    code = main(argv)
    out, err = capsys.readouterr()
    reached = sim.request_count(case.job_id, source=case.source)
    assert reached == 1, "the request did not reach the sample's job"
    return code, out, err


@pytest.mark.parametrize("case", SNAPSHOT_CASES, ids=[case.id for case in SNAPSHOT_CASES])
def test_check_prints_the_normalized_snapshot_of_a_status_sample(
    check_env: None, sim: UpstreamSimulator, sim_url: str, capsys: Capture, case: Case
) -> None:
    expected = case.expected
    code, out, err = _serve_and_check(sim, sim_url, capsys, case)
    assert (code, err) == (0, "")
    printed = json.loads(out)
    assert isinstance(printed, dict)

    wanted = {
        "phase": expected.phase.value,
        "status": expected.status,
        "progress": expected.progress,
        "error": expected.error,
        "startedAt": expected.started_at,
        "completedAt": expected.completed_at,
        "statusKnown": expected.status_known,
    }
    assert {key: printed.get(key) for key in wanted} == wanted
    details = printed["details"]
    assert {key: details.get(key) for key in expected.details} == expected.details

    # Nothing is lost or added on the way through HTTP: the whole document is what the source makes of
    # the same bytes in memory (after the same size bounding the poller applies).
    in_memory = get_source(case.source).parse(HttpResponse(case.http_status, case.body.encode()))
    assert printed == bounded(in_memory).to_wire()
    assert Snapshot.model_validate(printed).to_wire() == printed


@pytest.mark.parametrize("case", ERROR_CASES, ids=[case.id for case in ERROR_CASES])
def test_check_exits_2_with_one_line_naming_the_cause_of_an_error_sample(
    check_env: None, sim: UpstreamSimulator, sim_url: str, capsys: Capture, case: Case
) -> None:
    expected = case.expected
    code, out, err = _serve_and_check(sim, sim_url, capsys, case)
    assert (code, out) == (2, "")
    lines = err.splitlines()
    assert len(lines) == 1, err
    head = f"jobwatch: poll failed: {expected.kind.value} HTTP {case.http_status}"
    if expected.api_code is not None:
        head += f" code {expected.api_code}"
    assert lines[0].startswith(head + ": "), lines[0]
    if expected.text is not None:
        assert expected.text in lines[0]


def test_every_sample_is_a_check_case_or_named_as_not_a_status_response() -> None:
    assert SAMPLES, "no reference samples discovered"
    unclassified = [sample.id for sample in SAMPLES if not _expectations(sample)]
    assert unclassified == [], "classify these in tests/contract/test_reference_samples.py EXPECTED"
    checked = {case.sample.id for case in CASES}
    not_status = {
        sample.id
        for sample in SAMPLES
        if all(isinstance(item, contract.NotApplicable) for item in _expectations(sample))
    }
    assert checked | not_status == {sample.id for sample in SAMPLES}
    assert not checked & not_status
    # Every source has at least one status sample and the files the issue names are all here.
    assert {case.source for case in SNAPSHOT_CASES} == set(SOURCE_ARGS)
    families = {sample.family for sample in SAMPLES if sample.id in checked}
    assert families == {
        "zilliz-cloud-v1",
        "zilliz-cloud-v2",
        "milvus-v2",
        "pinecone",
        "weaviate/export",
        "weaviate/backup",
    }


NOT_STATUS = [
    (sample.id, item.reason)
    for sample in SAMPLES
    for item in _expectations(sample)
    if isinstance(item, contract.NotApplicable)
]


@pytest.mark.parametrize(("sample_id", "reason"), NOT_STATUS, ids=[sample_id for sample_id, _ in NOT_STATUS])
def test_sample_that_is_not_a_status_response(sample_id: str, reason: str) -> None:
    """Listed one by one (with the contract's reason): create/list answers, a request body, a 204."""
    assert reason.strip()
    assert not any(case.sample.id == sample_id for case in CASES)
