"""Setting or clearing a job's snooze or mute: one read-change-write, written once for every caller.

The API and the CLI (`app.operations`) and the Slack buttons (`app.slack_interactions`) all change a
job's quiet state through `change_quiet`, so a snooze from Slack is stored exactly as one from
`jobwatch snooze` (docs/decisions.md, D43, D46).
"""

from __future__ import annotations

from collections.abc import Callable

from jobwatch.domain.model import Quiet, TrackedJob
from jobwatch.observability import logger
from jobwatch.ports import Clock, ConflictError, JobStore

QUIET_ATTEMPTS = 5
"""Read-change-write rounds a snooze or mute tries before giving up (a poller run writing the same
job at that moment is the only contention)."""


class QuietConflict(Exception):
    """A snooze or mute kept losing to concurrent writes of the job (HTTP 409)."""


def change_quiet(
    store: JobStore, clock: Clock, key: str, change: Callable[[Quiet, str], Quiet], actor: str, what: str
) -> TrackedJob | None:
    """The job with its quiet state changed (None: no such job).

    Read, change, write if the job is still at the version read; a poller run that wrote in between
    makes the write fail, and it is tried again on the newer job (QuietConflict after
    `QUIET_ATTEMPTS`). Setting a snooze or mute starts the suppressed count again; a change that
    changes nothing writes nothing."""
    for _ in range(QUIET_ATTEMPTS):
        job = store.get_job(key)
        if job is None:
            return None
        wanted = change(job.quiet, clock.now_iso())
        newly_set = (wanted.muted and not job.quiet.muted) or (
            wanted.snoozed_until is not None and wanted.snoozed_until != job.quiet.snoozed_until
        )
        health = job.health
        if newly_set:
            health = health.model_copy(update={"suppressed": 0, "last_suppressed": None})
        if wanted == job.quiet and health == job.health:
            return job
        try:
            saved = store.save_quiet(job, wanted, health)
        except ConflictError:
            continue
        extra = {"jobKey": key, "actor": actor, "snoozedUntil": wanted.snoozed_until}
        logger.info(f"job {what}", extra=extra)
        return saved
    raise QuietConflict(f"job {key} kept changing while being {what}; try again")
