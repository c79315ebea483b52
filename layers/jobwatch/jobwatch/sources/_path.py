"""Spec values in URL paths: each is checked and percent-encoded as exactly one segment.

The rule itself is `domain.identifiers.path_segment_problem` (registration applies it too); here a
value that breaks it is a CONFIG poll error, so a spec stored before the rule existed is never sent
to a route it does not name.
"""

from __future__ import annotations

from urllib.parse import quote

from jobwatch.domain.errors import PollError, PollErrorKind
from jobwatch.domain.identifiers import path_segment_refusal


def path_segment(field: str, value: str | None) -> str:
    """`value` encoded as one path segment (`quote(value, safe="")`), or PollError(CONFIG) naming `field`."""
    text = value or ""
    refusal = path_segment_refusal(field, text)
    if refusal is not None:
        raise PollError(PollErrorKind.CONFIG, refusal)
    return quote(text, safe="")
