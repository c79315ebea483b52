"""Polling one job once: the upstream side of a cycle, also what `jobwatch check` runs."""

from __future__ import annotations

from jobwatch.domain.errors import PollError, PollErrorKind
from jobwatch.domain.model import JobSpec, Snapshot, bounded
from jobwatch.ports import Secrets, SecretUnavailableError, Upstream
from jobwatch.sources import UnknownSourceError, get_source


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
    return bounded(source.parse(response, expect_id=spec.job_id))


def api_key_for(secrets: Secrets, spec: JobSpec) -> str | None:
    """The job's API key, or a CONFIG poll error naming the secret (never its value)."""
    if spec.secret_name is None:
        return None
    try:
        return secrets.get(spec.secret_name)
    except SecretUnavailableError as exc:
        raise PollError(PollErrorKind.CONFIG, str(exc)) from None
