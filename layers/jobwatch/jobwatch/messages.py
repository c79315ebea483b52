"""Pure rendering of a transition into what subscribers read: SNS email text, the SNS publish request,
and the shared pieces (severity, emoji, durations, progress, a cleaned view of the job) that the chat
channels reuse, so every channel says the same thing the same way. No I/O here.

Every string that comes from upstream (job ids, collection names, errors, labels, facts) is treated as
hostile: control characters, bidi overrides and lone surrogates are removed before anything renders it.
"""

from __future__ import annotations

import copy
import itertools
import json
import math
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from jobwatch import sources
from jobwatch.model import SCHEMA_ID, Event, Transition
from jobwatch.sources.base import Fact

__all__ = [
    "HEALTH_EVENTS",
    "MAX_EMAIL_ERROR_CHARS",
    "MAX_NOTE_CHARS",
    "MAX_SUBJECT_CHARS",
    "NOT_AVAILABLE",
    "NOT_OBSERVED",
    "NO_SECRET",
    "SNS_MAX_MESSAGE_BYTES",
    "TEST_NOTICE",
    "TransitionView",
    "clean_multiline",
    "clean_text",
    "collections_text",
    "describe",
    "duration_text",
    "ellipsize",
    "email_body",
    "email_publish_request",
    "email_subject",
    "event_emoji",
    "format_duration",
    "format_progress",
    "format_timestamp",
    "labels_text",
    "outcome_text",
    "parse_event",
    "phase_brief",
    "phase_change_text",
    "severity_for",
    "sns_message_attributes",
    "sns_publish_request",
    "to_ascii",
    "transition_from_sqs_body",
]

MAX_SUBJECT_CHARS = 100
"""SNS rejects (or cuts) email subjects longer than this."""
MAX_EMAIL_ERROR_CHARS = 4000
"""An upstream error can be a whole stack trace; the email keeps the head, which names the cause."""
MAX_NOTE_CHARS = 4000
"""A `note` quotes the last poll error, which can be a whole response body: the email keeps its head."""
SNS_MAX_MESSAGE_BYTES = 262_144
"""SNS limit for one publish: message, subject and attributes together, in UTF-8 bytes."""
_SNS_SAFETY_BYTES = 2_048
"""Headroom for envelope bytes we do not model exactly (attribute type names, request framing)."""
MAX_SNS_ATTRIBUTES = 10
"""SQS (raw delivery) accepts at most 10 message attributes; we publish at most five."""
NOT_AVAILABLE = "n/a"
TEST_NOTICE = "Test notification — no job changed"
NO_SECRET = "none registered"
"""Secret text of an AUTH_FAILED for a job registered without one (the note says to add --secret)."""
NOT_OBSERVED = "not observed yet"
"""Phase text for a job jobwatch has never seen (a health event about it carries a placeholder snapshot)."""
_PLACEHOLDER_STATUS = "(not observed yet)"
"""`current.status` of that placeholder (jobwatch.transitions._PLACEHOLDER)."""

HEALTH_EVENTS = frozenset({"STALLED", "RESUMED", "OVERDUE", "UNREACHABLE", "AUTH_FAILED", "RECOVERED"})
"""Events about jobwatch's view of a job rather than a change of its phase: they carry a `note`."""

_MAX_LINE_CHARS = 500
"""Cap for one single-line value in the email (job id, endpoint, fact): keeps the body bounded."""
_MAX_EMAIL_FACTS = 50
_MAX_LISTED_COLLECTIONS = 10

# --- severity and emoji ---------------------------------------------------------------------------

# Keyed by the event *value* so events added to the model later work without touching this module.
_SEVERITY_BY_EVENT: dict[str, str] = {
    "FAILED": "error",
    "AUTH_FAILED": "error",
    "LOST": "error",
    "CANCELED": "warning",
    "STALLED": "warning",
    "UNREACHABLE": "warning",
    "OVERDUE": "warning",
    "SUCCEEDED": "success",
    "RECOVERED": "success",
    "RESUMED": "success",
}

_EMOJI_BY_EVENT: dict[str, str] = {
    "QUEUED": "⏳",
    "STARTED": "▶️",
    "SUCCEEDED": "✅",
    "FAILED": "❌",
    "CANCELED": "🚫",
    "TEST": "🧪",
    "STALLED": "🐢",
    "RESUMED": "⏩",
    "UNREACHABLE": "📡",
    "RECOVERED": "🔌",
    "AUTH_FAILED": "🔑",
    "LOST": "❓",
    "OVERDUE": "⏰",
}

_EMOJI_BY_SEVERITY: dict[str, str] = {"error": "🔴", "warning": "🟠", "success": "🟢", "info": "🔵"}

# How an event reads after the job name; events not listed read as their lower-cased name.
_OUTCOME_BY_EVENT: dict[str, str] = {
    "QUEUED": "queued",
    "STARTED": "started",
    "SUCCEEDED": "succeeded",
    "FAILED": "failed",
    "CANCELED": "canceled",
    "LOST": "lost: upstream no longer knows this job",
    "STALLED": "stalled",
    "RESUMED": "resumed",
    "OVERDUE": "overdue",
    "UNREACHABLE": "unreachable",
    "AUTH_FAILED": "credentials rejected",
    "RECOVERED": "recovered",
    "TEST": "test notification",
}


def severity_for(event: Event | str) -> str:
    """How loud a transition is: error, warning, success or info (unknown events are info)."""
    return _SEVERITY_BY_EVENT.get(str(event), "info")


def event_emoji(event: Event | str, severity: str | None = None) -> str:
    """One emoji per event; an event this module does not know gets its severity's colour dot."""
    emoji = _EMOJI_BY_EVENT.get(str(event))
    if emoji is not None:
        return emoji
    return _EMOJI_BY_SEVERITY.get(severity or severity_for(event), _EMOJI_BY_SEVERITY["info"])


def outcome_text(event: Event | str, success_word: str | None = None) -> str:
    """What happened, in words: the source's success word on success, else the event's name."""
    name = str(event)
    if name == "SUCCEEDED" and success_word:
        return success_word
    return _OUTCOME_BY_EVENT.get(name, name.replace("_", " ").lower())


# --- text hygiene -----------------------------------------------------------------------------------

# Bidi embeddings/overrides/isolates can make a job id read backwards (spoofing); they carry no meaning here.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def _keep(char: str) -> bool:
    """False for control characters, lone surrogates, Unicode noncharacters and bidi controls.

    Surrogates cannot be encoded as UTF-8 and SNS refuses controls and noncharacters in attributes.
    """
    code = ord(char)
    if code < 0x20 or 0x7F <= code < 0xA0 or 0xD800 <= code <= 0xDFFF:
        return False
    if 0xFDD0 <= code <= 0xFDEF or (code & 0xFFFE) == 0xFFFE:
        return False
    return char not in _BIDI_CONTROLS


def clean_text(value: object, limit: int | None = None) -> str:
    """One line of upstream text: whitespace collapsed, control/bidi/surrogate characters removed."""
    text = value if isinstance(value, str) else str(value)
    text = "".join(" " if ch.isspace() else ch for ch in text if ch.isspace() or _keep(ch))
    text = " ".join(text.split())
    return ellipsize(text, limit) if limit is not None else text


def clean_multiline(value: object) -> str:
    """Multi-line upstream text (an error): lines kept, tabs expanded, no control or trailing spaces."""
    text = value if isinstance(value, str) else str(value)
    text = text.replace("\r\n", "\n").replace("\r", "\n").expandtabs(4)
    lines = []
    for line in text.split("\n"):
        kept = "".join(" " if ch.isspace() else ch for ch in line if ch.isspace() or _keep(ch))
        lines.append(kept.rstrip())
    return "\n".join(lines).strip("\n")


def ellipsize(text: str, limit: int, marker: str = "…") -> str:
    """Cut `text` to at most `limit` characters, marking the cut."""
    if len(text) <= limit:
        return text
    if limit <= len(marker):
        return text[:limit]
    return text[: limit - len(marker)].rstrip() + marker


def _truncated_note(total_chars: int) -> str:
    return f"… (truncated, {total_chars:,} chars)"


def _cap_block(text: str, limit: int) -> str:
    """Cap a multi-line text, saying how long the original was so the reader knows to look upstream."""
    if len(text) <= limit:
        return text
    note = _truncated_note(len(text))
    return text[: max(0, limit - len(note) - 1)].rstrip() + "\n" + note


# Characters NFKD cannot reduce to ASCII but that have an obvious ASCII spelling.
_ASCII_SPELLINGS = str.maketrans(
    {
        "·": "-",
        "•": "-",
        "\u2013": "-",
        "—": "-",
        "→": "->",
        "←": "<-",
        "…": "...",
        "\u2018": "'",
        "\u2019": "'",
        "“": '"',
        "”": '"',
        "ß": "ss",
        "æ": "ae",
        "Æ": "AE",
        "œ": "oe",
        "Œ": "OE",
        "ø": "o",
        "Ø": "O",
        "đ": "d",
        "Đ": "D",
        "ł": "l",
        "Ł": "L",
        "þ": "th",
        "Þ": "Th",
        "ð": "d",
        "Ð": "D",
        "\u0131": "i",
    }
)


def to_ascii(value: object) -> str:
    """Printable ASCII on one line: transliterate what has an ASCII spelling, drop the rest."""
    text = clean_text(value).translate(_ASCII_SPELLINGS)
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if " " <= ch <= "~")
    return " ".join(text.split())


# --- formatting shared by every channel -------------------------------------------------------------


def format_duration(seconds: float | None) -> str:
    """Compact human duration: `45s`, `12m 05s`, `3h 04m 05s`, `2d 03h 04m`."""
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return NOT_AVAILABLE
    total = int(seconds)
    if total < 60:
        return f"{total}s"
    days, rest = divmod(total, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours:02d}h {minutes:02d}m"
    if hours:
        return f"{hours}h {minutes:02d}m {secs:02d}s"
    return f"{minutes}m {secs:02d}s"


def format_progress(progress: float | None) -> str:
    """Percent with at most one decimal, rounded down so a running job never shows `100%`."""
    if progress is None or not math.isfinite(progress):
        return NOT_AVAILABLE
    value = min(100.0, max(0.0, progress))
    if value >= 100.0:
        return "100%"
    floored = math.floor(value * 10) / 10
    return f"{floored:.1f}".removesuffix(".0") + "%"


def _parse_timestamp(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def format_timestamp(value: str | None) -> str:
    """`2024-05-01 12:03:04 UTC`; an unparsable value is shown cleaned rather than dropped."""
    parsed = _parse_timestamp(value)
    if parsed is not None:
        return parsed.strftime("%Y-%m-%d %H:%M:%S UTC")
    return clean_text(value, 64) if value else NOT_AVAILABLE


def duration_text(t: Transition) -> str:
    """Upstream's own start/end when both are known; else start → this transition, marked `observed`."""
    started = _parse_timestamp(t.current.started_at)
    if started is None and t.previous is not None:
        started = _parse_timestamp(t.previous.started_at)
    if started is None:
        return NOT_AVAILABLE
    completed = _parse_timestamp(t.current.completed_at)
    if completed is not None and completed >= started:
        return format_duration((completed - started).total_seconds())
    observed = _parse_timestamp(t.occurred_at)
    if observed is not None and observed >= started:
        return f"{format_duration((observed - started).total_seconds())} (observed)"
    return NOT_AVAILABLE


def _is_placeholder(t: Transition) -> bool:
    """A health event about a job never observed: `current` is a stand-in, not something upstream said."""
    return t.previous is None and not t.current.status_known and t.current.status == _PLACEHOLDER_STATUS


def phase_change_text(t: Transition, arrow: str = "→") -> str:
    """`RUNNING → FAILED`; `RUNNING (unchanged)` for a health event; just the phase when first seen."""
    current = t.current.phase.value
    if _is_placeholder(t):
        return NOT_OBSERVED
    if t.previous is None:
        return current
    previous = t.previous.phase.value
    if previous == current:
        return f"{current} (unchanged)"
    return f"{previous} {arrow} {current}"


def collections_text(collections: Iterable[str], max_items: int = _MAX_LISTED_COLLECTIONS) -> str:
    """Comma list of the first names and a count of the rest: an export can cover thousands."""
    names = list(collections)
    if not names:
        return NOT_AVAILABLE
    shown = ", ".join(names[:max_items])
    if len(names) > max_items:
        shown += f" (+{len(names) - max_items} more)"
    return shown


def labels_text(labels: Iterable[tuple[str, str]]) -> str:
    pairs = [f"{key}={value}" for key, value in labels]
    return ", ".join(pairs) if pairs else NOT_AVAILABLE


# --- the cleaned view every renderer starts from ----------------------------------------------------


@dataclass(frozen=True, slots=True)
class TransitionView:
    """A transition reduced to cleaned display strings. Not escaped: each channel escapes its own way."""

    event: str
    severity: str
    emoji: str
    is_test: bool
    source: str
    title: str
    outcome: str
    job_id: str
    endpoint: str
    location_label: str
    location: str
    collections: tuple[str, ...]
    phase_change: str
    phase_unchanged: bool
    """True when the phase did not move (health and test events): the headline then says `still RUNNING`."""
    progress: str
    duration: str
    facts: tuple[Fact, ...]
    error: str | None
    """Full cleaned error text; each channel caps it to its own limit."""
    note: str | None
    """Why a health event fired (cleaned, lines kept, uncapped); each channel caps it to its own limit."""
    secret_name: str | None
    """The API-key secret to fix, or NO_SECRET: set for AUTH_FAILED only (the name, never the key)."""
    labels: tuple[tuple[str, str], ...]
    transition_id: str
    occurred_at: str


def _lookup_source(name: str) -> tuple[str, str | None, Any]:
    """(title, success_word, source or None); an unknown or not-yet-installed source renders by name."""
    try:
        source = sources.get_source(name)
    except (sources.UnknownSourceError, ImportError):
        return (clean_text(name, 80) or "unknown source"), None, None
    return clean_text(source.title), clean_text(source.success_word), source


def _facts(source: Any, t: Transition) -> tuple[Fact, ...]:
    if source is None:
        return ()
    try:
        raw = list(source.facts(t.job, t.current))
    except Exception as exc:
        # A notification without facts beats no notification: a bug in one source's facts must not
        # stop the transition from being published (it would fail the same way on every retry).
        return (Fact("Facts", f"unavailable ({type(exc).__name__})"),)
    facts = []
    for fact in raw:
        label = clean_text(getattr(fact, "label", ""), 100) or "?"
        value = clean_text(getattr(fact, "value", ""), 2_000) or NOT_AVAILABLE
        facts.append(Fact(label, value))
    return tuple(facts)


def _detail(t: Transition, key: str) -> Any:
    """A details entry from the current snapshot, else the previous one (an error poll may carry none)."""
    for snapshot in (t.current, t.previous):
        if snapshot is not None and snapshot.details.get(key) is not None:
            return snapshot.details[key]
    return None


def _collections(t: Transition) -> tuple[str, ...]:
    raw = _detail(t, "collections")
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list | tuple):
        return ()
    names = (clean_text(item, 200) for item in raw if item is not None)
    return tuple(name for name in names if name)


def _location(t: Transition) -> tuple[str, str]:
    """(label, value): the source's `location` detail, else what the spec says about where the job runs."""
    spec = t.job
    label = "Cluster" if spec.cluster_id else "Backend/path" if spec.backend else "Location"
    raw = _detail(t, "location")
    if raw is not None and clean_text(raw):
        return label, clean_text(raw, _MAX_LINE_CHARS)
    if spec.cluster_id:
        return label, clean_text(f"cluster {spec.cluster_id}", _MAX_LINE_CHARS)
    if spec.backend:
        return label, clean_text(spec.backend, _MAX_LINE_CHARS)
    return label, NOT_AVAILABLE


def describe(t: Transition) -> TransitionView:
    """Everything a renderer needs, looked up and cleaned once."""
    event = str(t.event)
    severity = t.severity if t.severity in _EMOJI_BY_SEVERITY else severity_for(event)
    title, success_word, source = _lookup_source(t.source)
    location_label, location = _location(t)
    error = clean_multiline(t.current.error) if t.current.error else ""
    note = clean_multiline(t.note) if t.note else ""
    secret = clean_text(t.job.secret_name, _MAX_LINE_CHARS) if t.job.secret_name else ""
    labels = tuple(sorted((clean_text(k, 100), clean_text(v, 200)) for k, v in t.job.labels.items()))
    return TransitionView(
        event=event,
        severity=severity,
        emoji=event_emoji(event, severity),
        is_test=event == "TEST",
        source=clean_text(t.source, 80),
        title=title,
        outcome=outcome_text(event, success_word),
        job_id=clean_text(t.job_id, _MAX_LINE_CHARS) or "?",
        endpoint=clean_text(t.job.endpoint, _MAX_LINE_CHARS) or NOT_AVAILABLE,
        location_label=location_label,
        location=location,
        collections=_collections(t),
        phase_change=phase_change_text(t),
        phase_unchanged=_is_placeholder(t)
        or (t.previous is not None and t.previous.phase == t.current.phase),
        progress=format_progress(t.current.progress),
        duration=duration_text(t),
        facts=_facts(source, t),
        error=error or None,
        note=note or None,
        secret_name=(secret or NO_SECRET) if event == "AUTH_FAILED" else None,
        labels=labels,
        transition_id=clean_text(t.transition_id, 200),
        occurred_at=format_timestamp(t.occurred_at),
    )


# --- email -------------------------------------------------------------------------------------------


def email_subject(t: Transition) -> str:
    """`[jobwatch] FAILED - Zilliz Cloud import job-abc (medium_articles)`: ASCII, one line, ≤ 100 chars.

    The job id and collections are what gets shortened: the event and kind must survive any input.
    """
    view = describe(t)
    head = ellipsize(f"[jobwatch] {to_ascii(view.event)} - {to_ascii(view.title)}", 60, "...")
    room = MAX_SUBJECT_CHARS - len(head) - 1  # the space before the job id
    job = to_ascii(t.job_id) or "?"
    names = [name for name in map(to_ascii, view.collections) if name]
    colls = ", ".join(names)
    if view.collections and not names:  # every name was non-ASCII: say how many rather than nothing
        count = len(view.collections)
        colls = f"{count} collection{'s' if count > 1 else ''}"
    if not colls or room - 3 < 12:  # no collections, or no room worth using for them
        return f"{head} {ellipsize(job, room, '...')}"[:MAX_SUBJECT_CHARS]
    room -= 3  # " (" and ")"
    if len(job) + len(colls) > room:
        colls_room = min(len(colls), max(room - len(job), room // 2))
        job = ellipsize(job, room - colls_room, "...")
        colls = ellipsize(colls, room - len(job), "...")
    return f"{head} {job} ({colls})"[:MAX_SUBJECT_CHARS]


def _line(label: str, value: str, width: int = 14) -> str:
    key = f"{label}:"
    text = f"{key:<{width}}{value}" if len(key) < width else f"{key} {value}"
    return text.rstrip()


def phase_brief(view: TransitionView) -> str:
    """The phase as a headline's parenthesis: `RUNNING → FAILED`, `still RUNNING`, `not observed yet`."""
    if view.phase_unchanged and view.phase_change != NOT_OBSERVED:
        return f"still {view.phase_change.removesuffix(' (unchanged)')}"
    return view.phase_change


def _headline(view: TransitionView) -> str:
    subject = f"{view.title} {ellipsize(view.job_id, 200)}"
    if view.is_test:
        return f"{TEST_NOTICE}: {subject} ({view.phase_change})"
    return f"{subject}: {view.outcome} ({phase_brief(view)})"


def _block_lines(label: str, text: str, width: int = 14) -> list[str]:
    """`Label:  first line`, further lines indented under the value."""
    first, *rest = text.split("\n")
    return [_line(label, first, width), *(f"{' ' * width}{row}".rstrip() for row in rest)]


def email_body(t: Transition) -> str:
    """Plain-text email: a headline, then one `Label: value` line per item in a fixed order."""
    view = describe(t)
    lines = [_headline(view), ""]
    if view.is_test:
        lines += ["This message only checks that jobwatch notifications reach you.", ""]
    if view.note:
        lines += _block_lines("Why", _cap_block(view.note, MAX_NOTE_CHARS))
    if view.secret_name:
        lines.append(_line("Secret", view.secret_name))
    lines += [
        _line("Event", f"{view.event} ({view.severity})"),
        _line("Source", f"{view.title} ({view.source})"),
        _line("Job id", view.job_id),
        _line("Endpoint", view.endpoint),
        _line(view.location_label, view.location),
        _line("Collections", collections_text(view.collections)),
        _line("Phase", view.phase_change),
        _line("Progress", view.progress),
        _line("Duration", view.duration),
    ]
    facts = view.facts[:_MAX_EMAIL_FACTS]
    lines += [_line(f.label, ellipsize(f.value, _MAX_LINE_CHARS)) for f in facts]
    if len(view.facts) > len(facts):
        lines.append(f"(+{len(view.facts) - len(facts)} more facts)")
    lines.append(_line("Labels", ellipsize(labels_text(view.labels), 1_000)))
    if view.error:
        lines += ["", "Error:"]
        capped = _cap_block(view.error, MAX_EMAIL_ERROR_CHARS)
        lines += [f"    {row}".rstrip() for row in capped.split("\n")]
    lines += [
        "",
        _line("Transition", view.transition_id),
        _line("Occurred at", view.occurred_at),
        "",
        "-- jobwatch",
    ]
    return "\n".join(line.rstrip() for line in lines) + "\n"


# --- SNS ---------------------------------------------------------------------------------------------


def _attribute_text(value: str) -> str:
    """SNS refuses attribute values with control characters or lone surrogates."""
    return clean_text(value, 1_000)


def sns_message_attributes(t: Transition) -> dict[str, dict[str, str]]:
    """Attributes subscribers filter on (boto3 `MessageAttributes` shape); empty values are left out."""
    values = {
        "event": str(t.event),
        "phase": t.current.phase.value,
        "source": t.source,
        "severity": t.severity if t.severity in _EMOJI_BY_SEVERITY else severity_for(t.event),
    }
    attributes: dict[str, dict[str, str]] = {}
    for name, raw in values.items():
        text = _attribute_text(raw)
        if text:
            attributes[name] = {"DataType": "String", "StringValue": text}
    labels = sorted(
        f"{_attribute_text(k)}={_attribute_text(v)}" for k, v in t.job.labels.items() if _attribute_text(k)
    )
    if labels:
        attributes["labels"] = {"DataType": "String.Array", "StringValue": _json(labels)}
    return attributes


def _json(value: Any) -> str:
    """Compact JSON that is always valid UTF-8 (a lone surrogate from upstream becomes `?`)."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text


def _utf8_len(text: str) -> int:
    return len(text.encode("utf-8"))


def _snapshots(event: dict[str, Any], *names: str) -> list[dict[str, Any]]:
    return [event[name] for name in names if isinstance(event.get(name), dict)]


def _drop_detail_lists(snapshot: dict[str, Any]) -> None:
    details = snapshot.get("details")
    if not isinstance(details, dict):
        return
    lists = [key for key, value in details.items() if isinstance(value, list | dict)]
    for key in lists:
        del details[key]
    if lists:
        details["detailsTruncated"] = True


def _keep_scalar_details(snapshot: dict[str, Any]) -> None:
    details = snapshot.get("details")
    if not isinstance(details, dict) or not details:
        return
    kept = {
        key: value
        for key, value in details.items()
        if value is None
        or isinstance(value, bool | int | float)
        or (isinstance(value, str) and len(value) <= 256)
    }
    kept["detailsTruncated"] = True
    snapshot["details"] = kept


def _cap_errors(snapshot: dict[str, Any]) -> None:
    error = snapshot.get("error")
    if isinstance(error, str) and len(error) > MAX_EMAIL_ERROR_CHARS:
        snapshot["error"] = _cap_block(error, MAX_EMAIL_ERROR_CHARS)


def _cap_texts(event: dict[str, Any]) -> None:
    """Cut both errors and the note (which quotes the last poll error) to the e-mail's cap."""
    for snapshot in _snapshots(event, "previous", "current"):
        _cap_errors(snapshot)
    note = event.get("note")
    if isinstance(note, str) and len(note) > MAX_NOTE_CHARS:
        event["note"] = _cap_block(note, MAX_NOTE_CHARS)


def _on(name: str, step: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    """`step` applied to one snapshot of the event, when that snapshot is there."""

    def apply(event: dict[str, Any]) -> None:
        for snapshot in _snapshots(event, name):
            step(snapshot)

    return apply


_SHRINK_STEPS: tuple[Callable[[dict[str, Any]], None], ...] = (
    _on("previous", _drop_detail_lists),
    _on("current", _drop_detail_lists),
    _on("previous", _keep_scalar_details),
    _on("current", _keep_scalar_details),
    _cap_texts,
)


def _shrunk(event: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Ever smaller copies of the wire event: the least useful bytes go first."""
    event = copy.deepcopy(event)
    for step in _SHRINK_STEPS:
        step(event)
        yield event


def _request_size(subject: str, message: str, attributes: Mapping[str, Mapping[str, str]]) -> int:
    size = _utf8_len(subject) + _utf8_len(message)
    for name, attribute in attributes.items():
        size += _utf8_len(name) + sum(_utf8_len(v) for v in attribute.values())
    return size


def email_publish_request(t: Transition) -> dict[str, Any]:
    """Keyword arguments for publishing one transition's e-mail to the alert e-mail topic.

    The same attributes as on the transitions topic, so addresses subscribed there can filter by
    event, source, severity or label.
    """
    return {
        "Subject": email_subject(t),
        "Message": email_body(t),
        "MessageAttributes": sns_message_attributes(t),
    }


def sns_publish_request(t: Transition) -> dict[str, Any]:
    """Keyword arguments for `sns.publish` (minus TopicArn): email text for people, JSON for machines.

    If the event would push the request over SNS's 256 KiB, snapshot details are shrunk step by step
    (marked `detailsTruncated: true`), then errors and `note` are cut, rather than failing the publish.
    """
    subject = email_subject(t)
    body = email_body(t)
    attributes = sns_message_attributes(t)
    budget = SNS_MAX_MESSAGE_BYTES - _SNS_SAFETY_BYTES
    wire = t.to_wire()
    for event in itertools.chain([wire], _shrunk(wire)):
        event_json = _json(event)
        message = _json(
            {
                "default": body,
                "email": body,
                "sqs": event_json,
                "lambda": event_json,
                "https": event_json,
                "http": event_json,
            }
        )
        if _request_size(subject, message, attributes) <= budget:
            return {
                "Subject": subject,
                "Message": message,
                "MessageStructure": "json",
                "MessageAttributes": attributes,
            }
    raise ValueError(f"transition {t.transition_id!r} does not fit in one SNS message even after truncation")


# --- consumer side -------------------------------------------------------------------------------------


def _validation_summary(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors()[:5]:
        where = ".".join(str(p) for p in error["loc"]) or "(root)"
        parts.append(f"{where}: {error['msg']}")
    more = exc.error_count() - len(parts)
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def _transition_from_object(data: Any) -> Transition:
    if not isinstance(data, dict):
        raise ValueError(
            f"not a jobwatch transition event: expected a JSON object, got {type(data).__name__}"
        )
    schema = data.get("schema")
    if not isinstance(schema, str) or not schema.startswith("jobwatch.transition/"):
        raise ValueError(f"not a jobwatch transition event: schema is {schema!r}, expected {SCHEMA_ID!r}")
    if schema != SCHEMA_ID:
        raise ValueError(f"unsupported event schema {schema!r}: this consumer reads {SCHEMA_ID!r}")
    try:
        return Transition.model_validate(data)
    except ValidationError as exc:
        raise ValueError(f"invalid {SCHEMA_ID} event: {_validation_summary(exc)}") from exc


def _loads(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        excerpt = clean_text(text, 80)
        raise ValueError(f"{what} is not JSON ({exc}): {excerpt!r}") from exc


def parse_event(text: str) -> Transition:
    """The published JSON event (as delivered to sqs/lambda/https subscribers) back into a Transition."""
    return _transition_from_object(_loads(text, "event"))


def transition_from_sqs_body(body: str) -> Transition:
    """An SQS message body: either the SNS notification envelope or (raw delivery) the event itself."""
    data = _loads(body, "SQS body")
    if isinstance(data, dict) and data.get("Type") == "Notification" and "Message" in data:
        message = data["Message"]
        if not isinstance(message, str):
            raise ValueError("SNS notification 'Message' is not a string")
        try:
            return parse_event(message)
        except ValueError as exc:
            message_id = clean_text(data.get("MessageId", "?"), 80)
            raise ValueError(f"SNS notification {message_id}: {exc}") from exc
    if isinstance(data, dict) and "schema" in data:
        return _transition_from_object(data)
    if isinstance(data, dict):
        keys = ", ".join(sorted(str(k) for k in data)[:8])
        raise ValueError(f"SQS body is neither an SNS notification nor a transition event (keys: {keys})")
    raise ValueError(
        f"SQS body is neither an SNS notification nor a transition event ({type(data).__name__})"
    )
