"""Identifiers that jobwatch puts into a URL path: each must be exactly one path segment.

Why a rule of its own: a Weaviate backend and export/backup id, or a Pinecone import id, are user
input that becomes part of the URL the poller calls with an API key. Percent-encoding the whole
value (`quote(value, safe="")`) turns `?`, `#`, `%`, spaces and non-ASCII into one literal segment,
but some values cannot be one segment however they are encoded:
- empty: `/v1/export/s3/` is another route (or a listing);
- `.` and `..`: dot segments are removed by URL resolution (RFC 3986 §5.2.4, which yarl, httpx and
  every server apply), and their percent-encoded forms are equivalent to them, so `..` would poll the
  parent resource;
- `/`: encoded as `%2F` it is one segment by the RFC, but many servers, proxies and routers decode
  `%2F` before routing (or refuse it: Apache's AllowEncodedSlashes Off, 404), so the request would
  reach another route;
- `\\`: WHATWG URL parsers (browsers, Node, several proxies) read it as `/` in http(s) URLs, and
  IIS/Spring-style servers normalise `%5C` the same way;
- control characters (C0, DEL, C1): NUL truncates paths in C-based servers, CR/LF are the start of
  header injection wherever a layer decodes before writing, and none can appear in a real job id;
- lone surrogates: not encodable as UTF-8, so the value has no URL form at all.
Everything else (`?x=1`, `#frag`, `%2e%2e`, `%2F`, spaces, Unicode) is allowed and sent
percent-encoded as one literal segment: `%` itself becomes `%25`, so `%2e%2e` reaches the server as
the four characters it is, never as `..`.
The rule is checked at registration (`app.registration`, RegistrationRefused naming the wire field)
and again in each source's `build_request` (PollError CONFIG), for specs stored before it existed.
"""

from __future__ import annotations

import re

_BAD_CHARACTER = re.compile("[/\\\\\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_WHY: dict[str, str] = {
    "/": "which would split it into two path segments",
    "\\": "which many URL parsers and servers read as '/'",
}


def path_segment_problem(value: str) -> str | None:
    """Why `value` cannot be one URL path segment (a phrase to follow the field name), or None."""
    if not value:
        return "is empty"
    if value in (".", ".."):
        return "is a dot segment, which URL resolution removes"
    found = _BAD_CHARACTER.search(value)
    if found is None:
        return None
    char = found.group()
    why = _WHY.get(char)
    if why is not None:
        return f"contains {char!r} at position {found.start()}, {why}"
    kind = "a lone surrogate" if "\ud800" <= char <= "\udfff" else "a control character"
    return f"contains {kind} (U+{ord(char):04X}) at position {found.start()}, which no URL path can carry"


def path_segment_refusal(field: str, value: str) -> str | None:
    """The one-line reason a spec field's value cannot go into a URL path, naming its wire field."""
    problem = path_segment_problem(value)
    if problem is None:
        return None
    return f"{wire_field(field)} {value!r} cannot be one URL path segment: it {problem}"


def wire_field(name: str) -> str:
    """The wire (camelCase) name of a JobSpec field, as registrations and error messages spell it."""
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)
