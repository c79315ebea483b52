"""Publishing owed transitions: right after they are recorded, and again from the outbox.

A transition is recorded in the same conditional write as its job's new state (the job item's
outbox), so publishing can fail or crash without losing it: later cycles republish what is still
owed, per job strictly in order, with exponential backoff, and dead-letter it after a cap (alarm).
"""

from __future__ import annotations

import asyncio
import functools
import math
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any, Protocol

from jobwatch.domain.model import Transition
from jobwatch.observability import logger
from jobwatch.ports import Clock, JobStore, Publisher

OUTBOX_GRACE_S = 60.0
"""A transition younger than this may still be in the hands of the run that recorded it."""
OUTBOX_MAX_ATTEMPTS = 8


class OutboxCounts(Protocol):
    """The counters of a cycle report this module adds to."""

    published: int
    republished: int
    publish_failures: int
    dead_lettered: int


class Outbox:
    """Publishes transitions and settles them in the store; remembers jobs that must wait."""

    def __init__(
        self,
        store: JobStore,
        publisher: Publisher,
        clock: Clock,
        counts: OutboxCounts,
        executor: Executor,
    ) -> None:
        self.store = store
        self.publisher = publisher
        self.clock = clock
        self.counts = counts
        self.executor = executor
        self.blocked_jobs: set[str] = set()
        """Jobs with an older transition still owed: their newer ones wait for the drain."""

    async def _in_thread(self, fn: Callable[[], Any]) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn)

    async def publish(self, transition: Transition, *, republish: bool = False) -> bool:
        """One publish; on failure the transition stays owed (its attempt counted) and False."""
        try:
            message_id = await self._in_thread(lambda: self.publisher.publish(transition))
        except Exception as exc:  # any publish failure leaves the transition in the outbox
            self.counts.publish_failures += 1
            logger.error(
                "publish failed; transition stays in the outbox",
                extra={
                    "jobKey": transition.job_key,
                    "transitionId": transition.transition_id,
                    "error": repr(exc),
                },
            )
            await self._in_thread(lambda: self.store.note_publish_failure(transition))
            return False
        if republish:
            self.counts.republished += 1
        else:
            self.counts.published += 1
        now_s = self.clock.now()
        await self._in_thread(lambda: self.store.mark_published(transition, message_id, now_s))
        return True

    async def publish_fresh(
        self, job_key: str, owes_older: bool, transitions: tuple[Transition, ...]
    ) -> None:
        """Publish what one write recorded, in order, unless an older one of the job is still owed."""
        if job_key in self.blocked_jobs or owes_older:
            # An older transition of this job is still owed (maybe by an overlapping run): the outbox
            # drain publishes them all, oldest first.
            self.blocked_jobs.add(job_key)
            return
        for transition in transitions:  # in order: a later one is never published first
            if not await self.publish(transition):
                self.blocked_jobs.add(job_key)
                break

    async def drain(self, time_left: Callable[[], bool]) -> None:
        """Publish transitions that were recorded but never published (crash, SNS outage).

        Per job, strictly in order: once one of a job's transitions cannot go out yet, its later
        ones wait too (also fresh ones recorded in this cycle), so subscribers never see them swapped.
        `time_left()` is False once the cycle must stop starting work.
        """
        pending = await self._in_thread(self.store.pending_transitions)
        now = self.clock.now()
        for item in pending:
            transition = item.transition
            if transition.job_key in self.blocked_jobs:
                continue
            backoff = OUTBOX_GRACE_S * math.pow(2, min(item.attempts, 6))
            if now - item.recorded_at < backoff or not time_left():
                self.blocked_jobs.add(transition.job_key)
                continue
            if item.attempts >= OUTBOX_MAX_ATTEMPTS:
                await self._dead_letter(transition, item.attempts, now)
                continue
            if not await self.publish(transition, republish=True):
                self.blocked_jobs.add(transition.job_key)

    async def _dead_letter(self, transition: Transition, attempts: int, now: float) -> None:
        self.counts.dead_lettered += 1
        reason = f"not published after {attempts} attempts"
        logger.error(
            "transition dead-lettered",
            extra={"jobKey": transition.job_key, "transitionId": transition.transition_id},
        )
        await self._in_thread(functools.partial(self.store.mark_dead_lettered, transition, reason, now))
