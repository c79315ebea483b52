"""Polling one job once: the upstream side of a cycle, also what `jobwatch check` runs."""

from __future__ import annotations

from collections.abc import Callable

from jobwatch.domain.errors import PollError, PollErrorKind
from jobwatch.domain.model import JobSpec, Snapshot, bounded
from jobwatch.ports import Secrets, SecretUnavailableError, Upstream
from jobwatch.sources import UnknownSourceError, get_source
from jobwatch.sources.base import HttpResponse

_Answer = tuple[str, int, str, bytes]
"""What a parse depends on: the job id it must name, the status code, the content type, the body."""


class LastAnswers:
    """The last answer parsed for each job in this process, with its snapshot: a job that has not
    moved gets the same bytes every poll, and parsing them again was a tenth of a quiet cycle's CPU.
    Sources are pure (D1), so identical inputs give the identical, frozen snapshot. Answers that fail
    to parse are not kept (they are parsed, and refused, every time). Bounded: past `limit` jobs the
    oldest entry goes, so a big shard costs at most `limit` bodies of memory."""

    def __init__(self, limit: int = 16_384) -> None:
        self._limit = limit
        self._last: dict[str, tuple[_Answer, Snapshot]] = {}

    def snapshot(self, job_key: str, answer: _Answer, parse: Callable[[], Snapshot]) -> Snapshot:
        last = self._last.get(job_key)
        if last is not None and last[0] == answer:
            return last[1]
        snapshot = parse()
        if last is None and len(self._last) >= self._limit:
            del self._last[next(iter(self._last))]
        self._last[job_key] = (answer, snapshot)
        return snapshot


LAST_ANSWERS = LastAnswers()


def _answer(spec: JobSpec, response: HttpResponse) -> _Answer:
    return spec.job_id, response.status_code, response.headers.get("content-type", ""), response.body


async def poll_spec(upstream: Upstream, spec: JobSpec, api_key: str | None) -> Snapshot:
    """Build the source's request, send it, parse the answer into a bounded snapshot (or PollError).

    The answer must be about this job: a body naming another job id is INVALID_BODY (`expect_id`), so
    a confused or hostile upstream cannot move this job's phase with another job's status.
    """
    try:
        source = get_source(spec.source)
    except UnknownSourceError as exc:
        raise PollError(PollErrorKind.CONFIG, str(exc)) from None
    request = source.build_request(spec, api_key)
    response = await upstream.fetch(request)
    if response.status_code != 200:  # errors and rate limits carry headers the parse reads
        return bounded(source.parse(response, expect_id=spec.job_id))
    return LAST_ANSWERS.snapshot(
        spec.key, _answer(spec, response), lambda: bounded(source.parse(response, expect_id=spec.job_id))
    )


def api_key_for(secrets: Secrets, spec: JobSpec) -> str | None:
    """The job's API key, or a CONFIG poll error naming the secret (never its value)."""
    if spec.secret_name is None:
        return None
    try:
        return secrets.get(spec.secret_name)
    except SecretUnavailableError as exc:
        raise PollError(PollErrorKind.CONFIG, str(exc)) from None
