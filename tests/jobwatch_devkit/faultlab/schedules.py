"""Job stories and their ground truth: one random script per job (`make_schedule`), per-source kits of
states, undocumented words and vendor faults (`KITS`), and the events a correct jobwatch notifies for a
script (`expected_story`). See the package docstring for the rules that keep ground truth exact."""

from __future__ import annotations

import random
import string
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from jobwatch.domain.errors import PollErrorKind
from jobwatch.domain.model import EVENT_FOR_PHASE, JobSpec, NotifySettings, Phase

from ..simulator import (
    MILVUS,
    PINECONE,
    WEAVIATE_BACKUP,
    WEAVIATE_EXPORT,
    ZILLIZ_V1,
    ZILLIZ_V2,
    JobState,
    Step,
    fault_api_error,
    fault_array,
    fault_deep,
    fault_disconnect,
    fault_drift,
    fault_echo,
    fault_endless,
    fault_hang,
    fault_html,
    fault_http,
    fault_malformed,
    fault_oversized,
    fault_rate_limit,
    fault_reset,
    fault_slow,
    state,
)
from .config import LabConfig

__all__ = [
    "ALL_EVENTS",
    "BACKEND",
    "CLUSTER",
    "KITS",
    "SECRET_MARK",
    "SOURCE_WEIGHTS",
    "PlannedStep",
    "Schedule",
    "StateMaker",
    "expected_story",
    "make_schedule",
    "make_secret",
]

CLUSTER = "in01-faultlab"
BACKEND = "s3"
ALL_EVENTS = frozenset(
    {
        "QUEUED",
        "STARTED",
        "SUCCEEDED",
        "FAILED",
        "CANCELED",
        "LOST",
        "UNREACHABLE",
        "AUTH_FAILED",
        "RECOVERED",
    }
)
"""The events a schedule can produce (STALLED, RESUMED and OVERDUE are kept out by thresholds)."""
SECRET_MARK = "jwlabkey"
"""Every lab API key contains this: anything kept (a log line, an item, an event, a post, an e-mail)
that holds it holds a key, whole or in part."""
_KEY_CHARS = string.ascii_letters + string.digits + "+/="


def make_secret(rng: random.Random, source: str) -> str:
    """A job's API key: base64-like characters after the mark; Milvus keys are `user:password`."""
    token = SECRET_MARK + "".join(rng.choice(_KEY_CHARS) for _ in range(28))
    return f"labuser:{token}" if source == MILVUS else token


@dataclass(frozen=True, slots=True)
class PlannedStep:
    """One script step, with what it means for ground truth."""

    step: Step
    kind: str
    """`state`, `unknown` (undocumented status), or the fault's label (`http-500`, `hang`, ...)."""
    phase: Phase | None = None
    """The phase of a known state; None for faults and unknown statuses."""
    status: str | None = None
    """The `status` jobwatch stores for this known state."""
    fault_class: str | None = None
    """`other`, `auth` or `not-found` for faults."""
    error_kind: str | None = None
    """The poll error kind jobwatch must record for this step (hostile steps: TOO_LARGE, TOO_SLOW,
    TOO_DEEP, or the kind of an error that echoes the key); None: not checked."""


@dataclass
class Schedule:
    """One job story: one life of a tracked job (a re-tracked job gets a new Schedule, same key)."""

    index: int
    spec: JobSpec
    simulator: int
    """Index of the simulator (endpoint) serving this job."""
    steps: list[PlannedStep]
    expected: list[str]
    final_phase: Phase
    final_status: str
    cursor: int = 0
    """Steps fully served (advanced past, or re-served at the end)."""
    settled: bool = False
    tainted: bool = False
    """Polled in a cycle whose recording may be partial (crash, store error): it owes a clean poll."""
    secret: str = ""
    """The API key the simulator checks for this job (in Secrets Manager as `spec.secret_name`)."""
    life: str = ""
    """The job's life token as stored when it was tracked: its transition ids carry it (D28)."""
    generation: int = 1
    """1 for a job's first life, 2 after it was untracked and tracked again."""
    retired: bool = False
    """Untracked (its story is over; a later Schedule may be the same job's next life)."""
    machine_errors: int = 0
    """Polls that failed although the step served allowed an answer (`count_machine_error`)."""
    health_uncertain: bool = False
    """A machine-made poll error was recorded by a run whose effects are not exactly known (an
    overlap, a crash, a failed write): how many errors jobwatch counted is unknown, so its health
    events (UNREACHABLE, AUTH_FAILED, RECOVERED) cannot be predicted; everything else still is."""

    @property
    def current(self) -> PlannedStep:
        return self.steps[min(self.cursor, len(self.steps) - 1)]

    @property
    def key(self) -> str:
        return self.spec.key

    @property
    def story(self) -> str:
        """The key of this life's transitions: `<job key>#<life>` (see `invariants.story_of`)."""
        return f"{self.key}#{self.life}"

    @property
    def ended(self) -> bool:
        """Its script is told (or it is terminal in the store and no longer polled)."""
        return self.settled or self.cursor >= len(self.steps)

    def describe(self) -> str:
        return " ".join(f"{s.kind}:{s.status}" if s.kind == "state" else s.kind for s in self.steps)

    def count_machine_error(self, config: LabConfig, *, exact: bool) -> None:
        """A poll of the current step failed on the lab's loaded machine (a connect timeout to a
        simulator that would have answered), and the step will be served again.

        To jobwatch that is a real poll error and it counts towards UNREACHABLE, so ground truth
        gets it too: `exact` (one run recorded it cleanly) puts an `other` error in the script before
        the current step and recomputes the story; otherwise the count is unknown and the story's
        health events are left to what jobwatch did (`health_uncertain`)."""
        self.machine_errors += 1
        if not exact:
            self.health_uncertain = True
            return
        timeout = PlannedStep(self.current.step, MACHINE_ERROR, fault_class="other")
        self.steps.insert(self.cursor, timeout)
        self.cursor += 1
        expected, self.final_phase, self.final_status = expected_story(
            self.steps, config.unreachable_after, config.lost_after
        )
        if self.spec.notify is not None and self.spec.notify.events is not None:
            expected = [event for event in expected if event in self.spec.notify.events]
        self.expected = expected


MACHINE_ERROR = "machine-timeout"
"""The kind of a script step the lab adds for a poll its own machine failed (`count_machine_error`)."""

StateMaker = Callable[[random.Random], tuple[Step, str]]


@dataclass(frozen=True)
class _Kit:
    """How to script one source: states per phase, undocumented words, vendor-specific faults."""

    source: str
    states: Mapping[Phase, StateMaker]
    unknown_words: tuple[str, ...]
    auth_codes: tuple[int, ...] = ()
    api_error_codes: tuple[int, ...] = ()
    not_found_codes: tuple[int, ...] = ()

    @property
    def nonterminal(self) -> list[Phase]:
        return [p for p in self.states if not p.terminal]

    @property
    def terminal(self) -> list[Phase]:
        return [p for p in self.states if p.terminal]

    def lure(self, rng: random.Random) -> JobState:
        """A terminal state for a hostile body to claim: read, it would be a false alert."""
        step, _ = self.states[rng.choice(self.terminal)](rng)
        assert step.state is not None
        return step.state


_ERRORS = (
    "disk full on node weaviate-2",
    "file data/3.parquet: column `vector` has dimension 768, expected 1024",
    "<!channel> quota exceeded & retried 3 times > giving up",
    "permission denied: s3://jobwatch-sim/imports",
)


def _word(words: Sequence[str], **fields: Any) -> StateMaker:
    def make(rng: random.Random) -> tuple[Step, str]:
        word = rng.choice(list(words))
        values = {k: (v(rng) if callable(v) else v) for k, v in fields.items()}
        return state(word, **values), word

    return make


def _progress(rng: random.Random) -> int:
    return rng.randint(1, 99)


def _error(rng: random.Random) -> str:
    return rng.choice(_ERRORS)


def _zilliz_v1_running(rng: random.Random) -> tuple[Step, str]:
    return state(ready=round(rng.uniform(0.0, 0.99), 2)), "ImportRunning"


def _zilliz_v1_done(rng: random.Random) -> tuple[Step, str]:
    return state(ready=1), "ImportCompleted"


def _zilliz_v1_failed(rng: random.Random) -> tuple[Step, str]:
    return state(ready=round(rng.uniform(0.0, 0.9), 2), error_message=_error(rng)), "ImportFailed"


KITS: dict[str, _Kit] = {
    WEAVIATE_EXPORT: _Kit(
        WEAVIATE_EXPORT,
        {
            Phase.RUNNING: _word(["STARTED", "TRANSFERRING"], objects=lambda r: r.randint(0, 10**6)),
            Phase.SUCCEEDED: _word(["SUCCESS"], objects=lambda r: r.randint(1, 10**6)),
            Phase.FAILED: _word(["FAILED"], error=_error),
            Phase.CANCELED: _word(["CANCELED"]),
        },
        ("REBALANCING", "PAUSED"),
    ),
    WEAVIATE_BACKUP: _Kit(
        WEAVIATE_BACKUP,
        {
            Phase.RUNNING: _word(["STARTED", "TRANSFERRING", "TRANSFERRED", "FINALIZING", "CANCELLING"]),
            Phase.SUCCEEDED: _word(["SUCCESS"], size=lambda r: round(r.uniform(0.1, 50), 3)),
            Phase.FAILED: _word(["FAILED"], error=_error),
            Phase.CANCELED: _word(["CANCELED"]),
        },
        ("COMPACTING",),
    ),
    ZILLIZ_V1: _Kit(
        ZILLIZ_V1,
        {
            Phase.RUNNING: _zilliz_v1_running,
            Phase.SUCCEEDED: _zilliz_v1_done,
            Phase.FAILED: _zilliz_v1_failed,
        },
        (),  # v1 has no status word: there is no undocumented status to serve
        auth_codes=(80001, 80002),
        api_error_codes=(80010, 80020, 65535),
    ),
    ZILLIZ_V2: _Kit(
        ZILLIZ_V2,
        {
            Phase.PENDING: _word(["Pending"], progress=0),
            Phase.RUNNING: _word(["Importing", "InProgress"], progress=_progress),
            Phase.SUCCEEDED: _word(["Completed"], progress=100),
            Phase.FAILED: _word(["Failed"], error=_error, progress=_progress),
        },
        ("Paused", "Queued"),
        auth_codes=(21119, 80001),
        api_error_codes=(40020, 65535),
    ),
    MILVUS: _Kit(
        MILVUS,
        {
            Phase.PENDING: _word(["Pending"], progress=0),
            Phase.RUNNING: _word(["Importing", "Uncommitted", "Committing"], progress=_progress),
            Phase.SUCCEEDED: _word(["Completed"], progress=100),
            Phase.FAILED: _word(["Failed"], error=_error),
        },
        ("Rebalancing",),
        auth_codes=(1800, 1400),
        api_error_codes=(1100, 65535),
        not_found_codes=(2100,),
    ),
    PINECONE: _Kit(
        PINECONE,
        {
            Phase.PENDING: _word(["Pending"]),
            Phase.RUNNING: _word(["InProgress"], progress=_progress),
            Phase.SUCCEEDED: _word(["Completed"]),
            Phase.FAILED: _word(["Failed"], error=_error),
            Phase.CANCELED: _word(["Cancelled"]),
        },
        ("Paused",),
    ),
}

SOURCE_WEIGHTS: dict[str, float] = {
    WEAVIATE_EXPORT: 0.35,
    ZILLIZ_V1: 0.35,
    WEAVIATE_BACKUP: 0.06,
    ZILLIZ_V2: 0.08,
    MILVUS: 0.08,
    PINECONE: 0.08,
}

_OTHER_FAULTS: dict[str, float] = {
    "http-5xx": 3,
    "html": 2,
    "rate-limit": 2,
    "malformed": 2,
    "array": 1,
    "drift": 2,
    "api-error": 2,
    "hang": 1.5,
    "reset": 1.5,
    "disconnect": 1,
    "oversized": 1.2,
    "endless": 0.8,
    "slow": 0.8,
    "deep": 1.2,
    "echo": 1.5,
}

FaultMaker = Callable[[random.Random, _Kit, LabConfig], PlannedStep]


def _http_5xx(rng: random.Random, kit: _Kit, config: LabConfig) -> PlannedStep:
    status = rng.choice([500, 502, 503, 504])
    return PlannedStep(fault_http(status), f"http-{status}", fault_class="other")


def _api_error(rng: random.Random, kit: _Kit, config: LabConfig) -> PlannedStep:
    code = rng.choice(kit.api_error_codes) if kit.api_error_codes else 500
    step = fault_api_error(code, f"simulated API error {code}")
    return PlannedStep(step, "api-error-in-200", fault_class="other")


def _hang(rng: random.Random, kit: _Kit, config: LabConfig) -> PlannedStep:
    # Around the read timeout: shorter hangs end in a closed connection, longer ones in a timeout.
    seconds = round(rng.uniform(0.5, 1.5) * config.read_timeout_s, 3)
    kind = "timeout" if seconds > config.read_timeout_s else "hang-then-close"
    return PlannedStep(fault_hang(seconds), kind, fault_class="other")


def _oversized(rng: random.Random, kit: _Kit, config: LabConfig) -> PlannedStep:
    """A body past the cap: gzip (a bomb in small), plain, or only announced by Content-Length."""
    mode = rng.choices(["gzip", "plain", "length"], weights=[6, 2, 2])[0]
    step = fault_oversized(mode=mode, lure=kit.lure(rng))
    return PlannedStep(step, f"oversized-{mode}", fault_class="other", error_kind=PollErrorKind.TOO_LARGE)


def _endless(rng: random.Random, kit: _Kit, config: LabConfig) -> PlannedStep:
    step = fault_endless(lure=kit.lure(rng))
    return PlannedStep(step, "endless", fault_class="other", error_kind=PollErrorKind.TOO_LARGE)


def _slow(rng: random.Random, kit: _Kit, config: LabConfig) -> PlannedStep:
    """A drip: each byte well within the read timeout, the body never within the total deadline."""
    step = fault_slow(config.slow_drip_s, lure=kit.lure(rng))
    return PlannedStep(step, "slow-drip", fault_class="other", error_kind=PollErrorKind.TOO_SLOW)


def _deep(rng: random.Random, kit: _Kit, config: LabConfig) -> PlannedStep:
    """JSON nested past 32 levels: just past (33 with the body's own object), far past, or enough to
    exhaust a recursive parser."""
    depth = rng.choice([32, 64, 2_000, 100_000])
    step = fault_deep(depth, lure=kit.lure(rng))
    return PlannedStep(step, "deep", fault_class="other", error_kind=PollErrorKind.TOO_DEEP)


def _echo_other(rng: random.Random, kit: _Kit, config: LabConfig) -> PlannedStep:
    """An error of the `other` class that repeats the request's key: 429, 5xx, an API code in 200."""
    options = ["echo-429", "echo-5xx"] + (["echo-api-error-in-200"] if kit.api_error_codes else [])
    label = rng.choice(options)
    if label == "echo-429":
        return PlannedStep(fault_echo(429), label, fault_class="other", error_kind=PollErrorKind.RATE_LIMITED)
    if label == "echo-5xx":
        step = fault_echo(rng.choice([500, 502, 503]))
        return PlannedStep(step, label, fault_class="other", error_kind=PollErrorKind.HTTP_STATUS)
    step = fault_echo(200, code=rng.choice(kit.api_error_codes), message="simulated API error")
    return PlannedStep(step, label, fault_class="other", error_kind=PollErrorKind.API_ERROR)


_FAULT_MAKERS: dict[str, FaultMaker] = {
    "http-5xx": _http_5xx,
    "html": lambda rng, kit, config: PlannedStep(
        fault_html(rng.choice([502, 503])), "html", fault_class="other"
    ),
    "rate-limit": lambda rng, kit, config: PlannedStep(
        fault_rate_limit(rng.choice([1, 30, 300, None])), "http-429", fault_class="other"
    ),
    "malformed": lambda rng, kit, config: PlannedStep(fault_malformed(), "malformed", fault_class="other"),
    "array": lambda rng, kit, config: PlannedStep(fault_array(), "malformed", fault_class="other"),
    "drift": lambda rng, kit, config: PlannedStep(fault_drift(), "drift", fault_class="other"),
    "api-error": _api_error,
    "hang": _hang,
    "reset": lambda rng, kit, config: PlannedStep(fault_reset(), "reset", fault_class="other"),
    "disconnect": lambda rng, kit, config: PlannedStep(fault_disconnect(), "disconnect", fault_class="other"),
    "oversized": _oversized,
    "endless": _endless,
    "slow": _slow,
    "deep": _deep,
    "echo": _echo_other,
}


def _other_fault(rng: random.Random, kit: _Kit, config: LabConfig) -> PlannedStep:
    label = rng.choices(list(_OTHER_FAULTS), weights=list(_OTHER_FAULTS.values()))[0]
    return _FAULT_MAKERS[label](rng, kit, config)


def _auth_fault(rng: random.Random, kit: _Kit) -> PlannedStep:
    options = ["http-401", "http-403", "echo-401", "echo-403"]
    options += ["auth-code-in-200", "echo-auth-code-in-200"] if kit.auth_codes else []
    label = rng.choice(options)
    if label.endswith("auth-code-in-200"):
        code = rng.choice(kit.auth_codes)
        if label.startswith("echo-"):
            step = fault_echo(200, code=code, message="Invalid token")
            return PlannedStep(step, label, fault_class="auth", error_kind=PollErrorKind.AUTH)
        return PlannedStep(fault_api_error(code, "Invalid token"), label, fault_class="auth")
    if label.startswith("echo-"):
        step = fault_echo(int(label[-3:]))
        return PlannedStep(step, label, fault_class="auth", error_kind=PollErrorKind.AUTH)
    return PlannedStep(fault_http(int(label[-3:])), label, fault_class="auth")


def _not_found(rng: random.Random, kit: _Kit) -> PlannedStep:
    echo = rng.random() < 0.3
    kind = PollErrorKind.NOT_FOUND if echo else None
    if kit.not_found_codes and rng.random() < 0.5:
        code = rng.choice(kit.not_found_codes)
        message = "import job does not exist, jobID=1: importing data failed"
        step = fault_echo(200, code=code, message=message) if echo else fault_api_error(code, message)
        label = "echo-not-found-code" if echo else "not-found-code"
        return PlannedStep(step, label, fault_class="not-found", error_kind=kind)
    if echo:
        return PlannedStep(fault_echo(404), "echo-404", fault_class="not-found", error_kind=kind)
    return PlannedStep(fault_http(404), "http-404", fault_class="not-found")


def _unknown(rng: random.Random, kit: _Kit) -> PlannedStep:
    return PlannedStep(state(rng.choice(kit.unknown_words)), "unknown")


def _sprinkle_unknowns(
    rng: random.Random, kit: _Kit, steps: list[PlannedStep], p: float
) -> list[PlannedStep]:
    """Insert undocumented statuses at random positions (they are transparent to every counter)."""
    if not kit.unknown_words:
        return steps
    out = list(steps)
    while rng.random() < p:
        out.insert(rng.randint(0, len(out)), _unknown(rng, kit))
    return out


def _gap(rng: random.Random, kit: _Kit, config: LabConfig) -> list[PlannedStep]:
    """Faults between two known states: none, exactly one, or a long run of one class."""
    roll = rng.random()
    faults: list[PlannedStep]
    if roll < 0.45:
        faults = []
    elif roll < 0.82:
        kind = rng.choices(["other", "auth", "not-found"], weights=[75, 12, 13])[0]
        if kind == "other":
            faults = [_other_fault(rng, kit, config)]
        elif kind == "auth":
            faults = [_auth_fault(rng, kit)]
        else:
            faults = [_not_found(rng, kit)]
    else:
        length = config.unreachable_after + rng.randint(0, 2)
        if rng.random() < 0.72:
            faults = [_other_fault(rng, kit, config) for _ in range(length)]
        else:
            faults = [_auth_fault(rng, kit) for _ in range(length)]
    return _sprinkle_unknowns(rng, kit, faults, 0.12)


def _known(rng: random.Random, kit: _Kit, phase: Phase, read_timeout_s: float) -> PlannedStep:
    step, status = kit.states[phase](rng)
    if rng.random() < 0.05:  # slow but well in time
        step = step.delayed(round(rng.uniform(0.1, 0.3) * read_timeout_s * 1000))
    return PlannedStep(step, "state", phase=phase, status=status)


def make_schedule(
    rng: random.Random,
    index: int,
    job_id: str,
    endpoint: str,
    simulator: int,
    config: LabConfig,
    *,
    source: str | None = None,
) -> Schedule:
    """One random job story (see the module docstring for the rules that keep ground truth exact);
    `source` fixes the source (a job tracked again keeps its identity)."""
    if source is None:
        source = rng.choices(list(SOURCE_WEIGHTS), weights=list(SOURCE_WEIGHTS.values()))[0]
    kit = KITS[source]
    count = rng.choices([1, 2, 3, 4, 5, 6, 7], weights=[8, 14, 18, 18, 14, 10, 6])[0]
    ending = rng.random()
    lost = ending >= 0.90
    phases: list[Phase] = []
    nonterminal = kit.nonterminal
    weights = [1 if p is Phase.PENDING else 3 for p in nonterminal]
    for _ in range(count - 1):
        phases.append(rng.choices(nonterminal, weights=weights)[0])
    if lost:
        if rng.random() < 0.15:
            phases = []  # never seen at all: a job id that never existed
        else:
            phases.append(rng.choices(nonterminal, weights=weights)[0])
    elif ending < 0.72:
        phases.append(rng.choice(kit.terminal))
    else:
        phases.append(rng.choices(nonterminal, weights=weights)[0])
    steps: list[PlannedStep] = []
    for phase in phases:
        steps += _gap(rng, kit, config)
        steps.append(_known(rng, kit, phase, config.read_timeout_s))
    if lost:
        run = [_not_found(rng, kit) for _ in range(config.lost_after + rng.randint(0, 2))]
        steps += _sprinkle_unknowns(rng, kit, run, 0.1)
    elif steps and rng.random() < 0.1 and kit.unknown_words:
        steps.insert(len(steps) - 1, _unknown(rng, kit))
    expected, final_phase, final_status = expected_story(steps, config.unreachable_after, config.lost_after)
    notify = None
    if rng.random() < config.p_notify_filter:
        allowed = sorted(rng.sample(sorted(ALL_EVENTS), rng.randint(1, len(ALL_EVENTS) - 1)))
        notify = NotifySettings(events=allowed)
        expected = [event for event in expected if event in allowed]
    spec = JobSpec(
        source=source,
        endpoint=endpoint,
        job_id=job_id,
        backend=BACKEND if source in (WEAVIATE_EXPORT, WEAVIATE_BACKUP) else None,
        cluster_id=CLUSTER if source in (ZILLIZ_V1, ZILLIZ_V2) else None,
        labels=_labels(index),
        notify=notify,
    )
    return Schedule(index, spec, simulator, steps, expected, final_phase, final_status)


def _labels(index: int) -> dict[str, str]:
    """`lab`, and a `team` by index (routes match on it; the random streams stay as they were)."""
    teams = ("search", "ingest", "ml", None)
    team = teams[index % len(teams)]
    return {"lab": "faultlab"} if team is None else {"lab": "faultlab", "team": team}


def expected_story(
    steps: Sequence[PlannedStep], unreachable_after: int, lost_after: int
) -> tuple[list[str], Phase, str]:
    """The events a correct jobwatch notifies for this script, and the phase/status it ends with."""
    phase: Phase | None = None
    status: str | None = None
    alert: str | None = None
    errors = not_found = 0
    cap = max(unreachable_after, lost_after)
    events: list[str] = []
    # A simulator serves its last step for ever: a script that ends inside a not-found run (one a
    # machine error interrupted) goes on until LOST.
    tail = [steps[-1]] * lost_after if steps and steps[-1].fault_class == "not-found" else []
    for step in [*steps, *tail]:
        if phase is not None and phase.terminal:
            break  # a terminal job is not polled again
        if step.kind == "unknown":
            continue  # ignored: neither counted nor a reset
        if step.phase is not None:
            if alert is not None:
                events.append("RECOVERED")
                alert = None
            errors = not_found = 0
            if step.phase is not phase:
                events.append(EVENT_FOR_PHASE[step.phase].value)
            phase, status = step.phase, step.status
            continue
        errors = min(errors + 1, cap)
        not_found = min(not_found + 1, lost_after) if step.fault_class == "not-found" else 0
        if step.fault_class == "not-found" and not_found >= lost_after:
            events.append("LOST")
            phase, status = Phase.LOST, "NOT_FOUND"
            break
        if errors >= unreachable_after and alert is None:
            alert = "AUTH_FAILED" if step.fault_class == "auth" else "UNREACHABLE"
            events.append(alert)
    if phase is None or status is None:
        raise ValueError("a script must end in a known state or a not-found run")
    return events, phase, status
