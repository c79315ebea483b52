"""What the registration API and the CLI do, written once.

`jobwatch.api.routes` (HTTP) and `jobwatch_tools.cli` (terminal) both parse their input into the models
of `jobwatch.app.models` and call these methods; neither talks to the stores or validates on its own.
So `POST /jobs` and `jobwatch track`, `GET /jobs` and `jobwatch list`, and so on, cannot drift.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from jobwatch.app.models import (
    JobList,
    JobRegistration,
    JobResource,
    TestNotification,
    WatchList,
    WatchRegistration,
)
from jobwatch.app.registration import RegistrationRefused, build_spec, build_watch
from jobwatch.domain.endpoints import EndpointPolicy
from jobwatch.domain.model import Event, Phase, Snapshot, TrackedJob, Transition, Watch
from jobwatch.domain.severity import severity_for
from jobwatch.observability import logger
from jobwatch.ports import Clock, JobStore, Publisher, WatchStore
from jobwatch.settings import ApiSettings

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200


class BadToken(ValueError):
    """A `nextToken` this API did not hand out."""


def _encode_token(job: TrackedJob) -> str:
    raw = json.dumps([job.created_at, job.key], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_token(token: str) -> tuple[str, str]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        created_at, key = json.loads(raw)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise BadToken("nextToken is not one this API returned") from exc
    if not isinstance(created_at, str) or not isinstance(key, str):
        raise BadToken("nextToken is not one this API returned")
    return created_at, key


def parse_label_filters(labels: Sequence[str]) -> dict[str, str]:
    """`k=v` filters (all must match); a filter without `=` is refused, not ignored."""
    wanted: dict[str, str] = {}
    for text in labels:
        key, sep, value = text.partition("=")
        if not sep or not key:
            raise RegistrationRefused(f"label filter {text!r} must look like key=value", field="label")
        wanted[key] = value
    return wanted


def _not_polled() -> Snapshot:
    return Snapshot(phase=Phase.PENDING, status="not polled yet")


@dataclass
class Operations:
    settings: ApiSettings
    store: JobStore
    watches: WatchStore
    publisher: Publisher
    policy: EndpointPolicy
    clock: Clock

    # -- jobs ------------------------------------------------------------------------------------------

    def track(self, registration: JobRegistration) -> tuple[JobResource, bool]:
        """Validate (SSRF guard included) and store; (resource, created). Refusals write nothing."""
        spec = build_spec(registration, self.policy)
        job, created = self.store.add_job(spec, self.clock.now_iso())
        logger.info(
            "job tracked" if created else "job already tracked",
            extra={
                "jobKey": job.key,
                "jobId": spec.job_id,
                "source": spec.source,
                "secretName": spec.secret_name,
            },
        )
        return JobResource.of(job), created

    def show(self, key: str) -> JobResource | None:
        job = self.store.get_job(key)
        if job is None:
            return None
        return JobResource.of(job, self.store.recent_transitions(key))

    def list_jobs(
        self,
        *,
        phase: Phase | None = None,
        source: str | None = None,
        labels: Sequence[str] = (),
        limit: int = DEFAULT_PAGE_SIZE,
        next_token: str | None = None,
    ) -> JobList:
        """Filtered, oldest first; the token is the (createdAt, key) of the last job of the page."""
        wanted = parse_label_filters(labels)
        after = _decode_token(next_token) if next_token else None
        limit = max(1, min(limit, MAX_PAGE_SIZE))
        page: list[TrackedJob] = []
        more = False
        for job in sorted(self.store.all_jobs(), key=lambda j: (j.created_at, j.key)):
            if after is not None and (job.created_at, job.key) <= after:
                continue
            if phase is not None and (job.snapshot is None or job.snapshot.phase != phase):
                continue
            if source is not None and job.spec.source != source:
                continue
            if any(job.spec.labels.get(k) != v for k, v in wanted.items()):
                continue
            if len(page) == limit:
                more = True
                break
            page.append(job)
        token = _encode_token(page[-1]) if more and page else None
        return JobList(jobs=[JobResource.of(job) for job in page], next_token=token)

    def untrack(self, key: str) -> bool:
        deleted = self.store.delete_job(key)
        if deleted:
            logger.info("job untracked", extra={"jobKey": key})
        return deleted

    def send_test(self, key: str) -> TestNotification | None:
        """Publish a TEST transition for the job through SNS (email + Slack); nothing is stored."""
        job = self.store.get_job(key)
        if job is None:
            return None
        current = job.snapshot or _not_polled()
        transition = Transition(
            transition_id=f"{key}#test-{uuid.uuid4()}",
            job_key=key,
            source=job.spec.source,
            job_id=job.spec.job_id,
            event=Event.TEST,
            severity=severity_for(Event.TEST),
            occurred_at=self.clock.now_iso(),
            job=job.spec,
            previous=job.snapshot,
            current=current,
        )
        message_id = self.publisher.publish(transition)
        logger.info(
            "test notification published", extra={"jobKey": key, "transitionId": transition.transition_id}
        )
        return TestNotification(transition_id=transition.transition_id, message_id=message_id)

    # -- watches ---------------------------------------------------------------------------------------

    def add_watch(self, registration: WatchRegistration) -> tuple[Watch, bool]:
        watch, created = self.watches.add(build_watch(registration, self.policy, self.clock.now_iso()))
        logger.info("watch added" if created else "watch already exists", extra={"watchId": watch.id})
        return watch, created

    def list_watches(self) -> WatchList:
        return WatchList(watches=self.watches.list())

    def remove_watch(self, watch_id: str) -> bool:
        return self.watches.delete(watch_id)
