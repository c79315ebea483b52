"""`jobwatch follow`: watch one or more jobs until each is terminal, then exit with the outcome.

The loop knows nothing about where snapshots come from: a fetch function returns one `Observation`
per followed job (state mode re-reads the store, direct mode polls the upstream), and a view shows
them (rich Live on a terminal, timestamped lines through a pipe). So the exit codes and the timeout
are decided in one place whatever the mode.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, TextIO

from jobwatch.domain.text import terminal_safe
from jobwatch_tools.followed import Followed, Observation, outcome_text, row_of
from jobwatch_tools.terminal import progress_cell

EXIT_ALL_SUCCEEDED = 0
EXIT_NOT_ALL_SUCCEEDED = 1
EXIT_TIMEOUT = 3
EXIT_INTERRUPTED = 130


def plain_line(job: Followed, now: datetime) -> str:
    """`2025-05-01T12:00:03Z  KEY  RUNNING  40% [####----]  rows 400/1,000  elapsed 1m 00s  ETA 1m 30s`."""
    row = row_of(job, now)
    parts = [now.strftime("%Y-%m-%dT%H:%M:%SZ"), row.name, row.phase]
    if job.snapshot is not None:
        parts.append(progress_cell(row.progress))
    parts += [row.volume, f"elapsed {row.elapsed}" if row.elapsed else "", row.eta, row.note]
    return "  ".join(part for part in parts if part)


class View(Protocol):
    def show(self, jobs: Sequence[Followed], changed: Sequence[Followed], now: datetime) -> None: ...

    def finish(self, jobs: Sequence[Followed], now: datetime, timed_out: bool) -> None: ...

    def close(self) -> None: ...


class PlainView:
    """Through a pipe: one timestamped line per job each time it changes, nothing in between."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def _say(self, line: str) -> None:
        self.stream.write(terminal_safe(line) + "\n")
        self.stream.flush()

    def show(self, jobs: Sequence[Followed], changed: Sequence[Followed], now: datetime) -> None:
        for job in changed:
            self._say(plain_line(job, now))

    def finish(self, jobs: Sequence[Followed], now: datetime, timed_out: bool) -> None:
        self._say(f"{now.strftime('%Y-%m-%dT%H:%M:%SZ')}  {outcome_text(jobs, timed_out)}")

    def close(self) -> None:
        """Nothing to restore: every line is already written."""


@dataclass
class Follow:
    """The refresh loop: fetch, show, stop when every job is terminal or the timeout passes."""

    fetch: Callable[[], Sequence[Observation]]
    view: View
    interval_s: float
    timeout_s: float | None = None
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    jobs: dict[str, Followed] = field(default_factory=dict)

    def run(self) -> int:
        deadline = None if self.timeout_s is None else self.clock() + self.timeout_s
        while True:
            now = self.refresh()
            jobs = list(self.jobs.values())
            if all(job.terminal for job in jobs):
                self.view.finish(jobs, now, timed_out=False)
                return EXIT_ALL_SUCCEEDED if all(j.succeeded for j in jobs) else EXIT_NOT_ALL_SUCCEEDED
            left = None if deadline is None else deadline - self.clock()
            if left is not None and left <= 0:
                self.view.finish(jobs, now, timed_out=True)
                return EXIT_TIMEOUT
            self.sleep(self.interval_s if left is None else min(self.interval_s, left))

    def refresh(self) -> datetime:
        seen = self.fetch()
        now = self.now()
        changed = []
        for observation in seen:
            job = self.jobs.setdefault(observation.name, Followed(observation.name))
            if job.update(observation, now):
                changed.append(job)
        self.view.show(list(self.jobs.values()), changed, now)
        return now


def choose_view(stream: TextIO | None = None, interval_s: float = 5.0) -> View:
    """rich Live when the output is a terminal, plain lines otherwise."""
    out = stream or sys.stdout
    if out.isatty():
        from jobwatch_tools.screens import LiveView

        return LiveView(out, interval_s)
    return PlainView(out)


def store_fetch(keys: Sequence[str], poll: bool) -> Callable[[], list[Observation]]:
    """State mode: re-read each tracked job from the store; with `poll`, run one local poll cycle
    (and deliver what it queued, like one `jobwatch run` cycle) before each read."""
    from jobwatch_tools.local import operations

    store = operations().store

    def fetch() -> list[Observation]:
        if poll:
            _one_cycle()
        return [_stored(store.get_job(key), key) for key in keys]

    return fetch


def _stored(job: Any, key: str) -> Observation:
    if job is None:
        return Observation(key, gone=True)
    return Observation(key, snapshot=job.snapshot, changed_at=job.updated_at)


def _one_cycle() -> None:
    from jobwatch.observability import metrics
    from jobwatch_tools.local import drain_notify_queue, poll_once

    poll_once()
    drain_notify_queue()
    metrics.clear_metrics()  # the Lambda flushes them as EMF; locally they would land on stdout


def direct_fetch(spec: Any, api_key: str | None) -> Callable[[], list[Observation]]:
    """Direct mode: poll the upstream once per refresh, no AWS; a failed poll keeps the last
    snapshot and is shown, the next refresh tries again."""
    from jobwatch.domain.errors import PollError
    from jobwatch_tools.local import check_job

    def fetch() -> list[Observation]:
        try:
            return [Observation(spec.job_id, snapshot=check_job(spec, api_key))]
        except PollError as exc:
            return [Observation(spec.job_id, error=str(exc))]

    return fetch
