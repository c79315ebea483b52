"""Short job references: an operator types a job id or the start of a key, not a 30-character key.

Pure: the caller hands in (key, job id) pairs of the tracked jobs; no store is read here.
"""

from __future__ import annotations

from collections.abc import Iterable

MAX_CANDIDATES = 5
"""An ambiguous reference names at most this many candidate keys (one line stays readable)."""


class ReferenceProblem(Exception):
    """A reference that names no tracked job, or several: `str()` is the one line to print."""


def resolve_reference(ref: str, jobs: Iterable[tuple[str, str]]) -> str:
    """The one key that `ref` names: the full key, else a job id, else a unique key prefix.

    The steps go from exact to loose and the first that matches anything decides, so a full key is
    never reported as ambiguous with the longer keys it is a prefix of."""
    pairs = list(jobs)
    if not ref:
        raise ReferenceProblem("an empty job reference names no job")
    for matches in (
        [key for key, _ in pairs if key == ref],
        [key for key, job_id in pairs if job_id == ref],
        [key for key, _ in pairs if key.startswith(ref)],
    ):
        unique = sorted(set(matches))
        if len(unique) == 1:
            return unique[0]
        if unique:
            raise ReferenceProblem(ambiguous_message(ref, unique))
    raise ReferenceProblem(f"no tracked job matches {ref!r} (give a job id, a key prefix or the full key)")


def ambiguous_message(ref: str, keys: list[str]) -> str:
    shown = ", ".join(keys[:MAX_CANDIDATES])
    more = len(keys) - MAX_CANDIDATES
    tail = f" and {more} more" if more > 0 else ""
    return f"{ref!r} matches {len(keys)} tracked jobs: {shown}{tail}; give more of the key"
