"""Scenario files: scripted jobs for the simulator written by hand (`--scenario FILE`, docs/simulator.md).

Why a file format next to the `/_sim/*` control API: a person trying jobwatch locally wants to say
"this export goes STARTED, TRANSFERRING, SUCCESS" in a file they can read and edit, not in HTTP calls.
The format is the control API's job object (`POST /_sim/jobs`) with friendlier steps: a step may be a
bare status word, a state's fields directly (`{"status": "Importing", "progress": 40}`), or the full
`{"state": ...}` / `{"fault": ...}` form. JSON always; YAML when PyYAML is installed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .script import JobState, Step
from .sources import DIALECTS, dialect_of

if TYPE_CHECKING:
    from .server import UpstreamSimulator

__all__ = ["ScenarioJob", "load_scenario", "parse_scenario", "step_from_scenario"]

_STEP_KEYS = frozenset({"state", "fault", "repeat", "hold", "delayMs", "delay_ms"})
_JOB_KEYS = frozenset({"source", "jobId", "backend", "clusterId", "scope", "collection", "apiKey", "steps"})
_JOB_NOTE_KEYS = frozenset({"note", "description"})
"""Free text for people reading the file; ignored."""


@dataclass(frozen=True, slots=True)
class ScenarioJob:
    """One scripted job of a scenario file."""

    source: str
    job_id: str
    steps: tuple[Step, ...]
    backend: str | None = None
    cluster_id: str | None = None
    collection: str | None = None
    api_key: str | None = None
    note: str | None = None

    def add_to(self, sim: UpstreamSimulator) -> None:
        sim.add_job(
            self.source,
            self.job_id,
            list(self.steps),
            backend=self.backend,
            cluster_id=self.cluster_id,
            api_key=self.api_key,
            collection=self.collection,
        )

    @property
    def scope(self) -> str | None:
        """`backend s3`, `cluster in01-abc` or None: what a status request must name besides the id."""
        if self.backend is not None:
            return f"backend {self.backend}"
        if self.cluster_id is not None:
            return f"cluster {self.cluster_id}"
        return None


def step_from_scenario(item: Any) -> Step:
    """A status word, a state's fields, or the control API's step object (`state`/`fault`/`repeat`...)."""
    if isinstance(item, str):
        return Step(state=JobState(status=item))
    if not isinstance(item, Mapping):
        raise ValueError(f"a step must be a status string or an object, got {type(item).__name__}")
    if "state" in item or "fault" in item or (item.get("hold") and set(item) <= _STEP_KEYS):
        return Step.from_json(item)
    fields = {k: v for k, v in item.items() if k not in _STEP_KEYS}
    return Step.from_json({**{k: v for k, v in item.items() if k in _STEP_KEYS}, "state": fields})


def _job(index: int, data: Any) -> ScenarioJob:
    where = f"jobs[{index}]"
    if not isinstance(data, Mapping):
        raise ValueError(f"{where}: a job must be an object")
    unknown = set(data) - _JOB_KEYS - _JOB_NOTE_KEYS
    if unknown:
        raise ValueError(f"{where}: unknown fields {sorted(unknown)}; known: {sorted(_JOB_KEYS)}")
    for required in ("source", "jobId", "steps"):
        if required not in data:
            raise ValueError(f"{where}: {required!r} is required")
    source = str(data["source"])
    try:
        dialect = dialect_of(source)
        steps = data["steps"]
        if not isinstance(steps, list) or not steps:
            raise ValueError("'steps' must be a non-empty list")
        parsed = tuple(step_from_scenario(step) for step in steps)
    except (ValueError, TypeError, KeyError) as exc:
        raise ValueError(f"{where} ({source} {data.get('jobId')}): {exc}") from None
    backend, cluster = data.get("backend"), data.get("clusterId")
    if data.get("scope") is not None:
        if dialect.scope == "backend" and backend is None:
            backend = data["scope"]
        elif dialect.scope == "cluster" and cluster is None:
            cluster = data["scope"]
    note = data.get("note", data.get("description"))
    return ScenarioJob(
        source=source,
        job_id=str(data["jobId"]),
        steps=parsed,
        backend=None if backend is None else str(backend),
        cluster_id=None if cluster is None else str(cluster),
        collection=None if data.get("collection") is None else str(data["collection"]),
        api_key=None if data.get("apiKey") is None else str(data["apiKey"]),
        note=None if note is None else str(note),
    )


def parse_scenario(data: Any) -> list[ScenarioJob]:
    """`{"jobs": [...]}` (other top-level keys, like the sandbox's `secrets`, are left to their readers)
    or a bare list of jobs."""
    jobs = data.get("jobs") if isinstance(data, Mapping) else data
    if not isinstance(jobs, list):
        raise ValueError('a scenario is {"jobs": [...]} or a list of jobs')
    parsed = [_job(i, job) for i, job in enumerate(jobs)]
    seen: set[tuple[str, str]] = set()
    for job in parsed:
        if (job.source, job.job_id) in seen:
            raise ValueError(f"job {job.source} {job.job_id} appears twice")
        seen.add((job.source, job.job_id))
    return parsed


def read_scenario_document(path: Path) -> Any:
    """The file's data: YAML for `.yaml`/`.yml` (needs PyYAML), JSON otherwise."""
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() in (".yaml", ".yml"):
        try:
            import yaml  # type: ignore[import-untyped,unused-ignore]
        except ImportError:
            raise ValueError(f"{path}: YAML scenarios need PyYAML (or write the file as JSON)") from None
        return yaml.safe_load(text)
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ValueError(f"{path}: not valid JSON: {exc}") from None


def load_scenario(path: Path) -> list[ScenarioJob]:
    """Read and check a scenario file; a ValueError names the file and the faulty job."""
    try:
        return parse_scenario(read_scenario_document(path))
    except ValueError as exc:
        message = str(exc)
        raise ValueError(message if message.startswith(str(path)) else f"{path}: {message}") from None


SOURCES_HELP = ", ".join(DIALECTS)
