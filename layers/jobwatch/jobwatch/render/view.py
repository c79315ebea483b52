"""The cleaned view of a transition that every renderer starts from, so every channel says the same
thing the same way. Pure: no I/O, no escaping (each channel escapes its own way).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from jobwatch import sources
from jobwatch.domain.humanize import (
    NOT_AVAILABLE,
    format_duration,
    format_eta,
    format_progress,
    format_timestamp,
    parse_timestamp,
)
from jobwatch.domain.model import Event, Phase, Transition
from jobwatch.domain.severity import severity_for
from jobwatch.domain.text import clean_multiline, clean_text
from jobwatch.sources.base import Fact

TEST_NOTICE = "Test notification — no job changed"


NO_SECRET = "none registered"
"""Secret text of an AUTH_FAILED for a job registered without one (the note says to add --secret)."""


NOT_OBSERVED = "not observed yet"
"""Phase text for a job jobwatch has never seen (a health event about it carries a placeholder snapshot)."""


_PLACEHOLDER_STATUS = "(not observed yet)"
"""`current.status` of that placeholder (jobwatch.transitions._PLACEHOLDER)."""


MAX_LINE_CHARS = 500
"""Cap for one single-line value in the email (job id, endpoint, fact): keeps the body bounded."""


_MAX_LISTED_COLLECTIONS = 10


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


EMOJI_BY_SEVERITY: dict[str, str] = {"error": "🔴", "warning": "🟠", "success": "🟢", "info": "🔵"}


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


def event_emoji(event: Event | str, severity: str | None = None) -> str:
    """One emoji per event; an event this module does not know gets its severity's colour dot."""
    emoji = _EMOJI_BY_EVENT.get(str(event))
    if emoji is not None:
        return emoji
    return EMOJI_BY_SEVERITY.get(severity or severity_for(event), EMOJI_BY_SEVERITY["info"])


def outcome_text(event: Event | str, success_word: str | None = None) -> str:
    """What happened, in words: the source's success word on success, else the event's name."""
    name = str(event)
    if name == "SUCCEEDED" and success_word:
        return success_word
    return _OUTCOME_BY_EVENT.get(name, name.replace("_", " ").lower())


def _truncated_note(total_chars: int) -> str:
    return f"… (truncated, {total_chars:,} chars)"


def cap_block(text: str, limit: int) -> str:
    """Cap a multi-line text, saying how long the original was so the reader knows to look upstream."""
    if len(text) <= limit:
        return text
    note = _truncated_note(len(text))
    return text[: max(0, limit - len(note) - 1)].rstrip() + "\n" + note


def duration_text(t: Transition) -> str:
    """Upstream's own start/end when both are known; else start → this transition, marked `observed`."""
    started = parse_timestamp(t.current.started_at)
    if started is None and t.previous is not None:
        started = parse_timestamp(t.previous.started_at)
    if started is None:
        return NOT_AVAILABLE
    completed = parse_timestamp(t.current.completed_at)
    if completed is not None and completed >= started:
        return format_duration((completed - started).total_seconds())
    observed = parse_timestamp(t.occurred_at)
    if observed is not None and observed >= started:
        return f"{format_duration((observed - started).total_seconds())} (observed)"
    return NOT_AVAILABLE


def eta_text(t: Transition) -> str | None:
    """The event's estimated completion in words, relative to when it occurred; None when there is
    none or the job is not RUNNING any more (a stored estimate never outlives its phase)."""
    if t.eta is None or t.current.phase is not Phase.RUNNING:
        return None
    return format_eta(t.eta, t.occurred_at)


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
    eta: str | None
    """`14:32 UTC (in 23 min)` for a RUNNING job with an estimate (D41); None: show nothing."""
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
        return label, clean_text(raw, MAX_LINE_CHARS)
    if spec.cluster_id:
        return label, clean_text(f"cluster {spec.cluster_id}", MAX_LINE_CHARS)
    if spec.backend:
        return label, clean_text(spec.backend, MAX_LINE_CHARS)
    return label, NOT_AVAILABLE


def describe(t: Transition) -> TransitionView:
    """Everything a renderer needs, looked up and cleaned once."""
    event = str(t.event)
    severity = t.severity if t.severity in EMOJI_BY_SEVERITY else severity_for(event)
    title, success_word, source = _lookup_source(t.source)
    location_label, location = _location(t)
    error = clean_multiline(t.current.error) if t.current.error else ""
    note = clean_multiline(t.note) if t.note else ""
    secret = clean_text(t.job.secret_name, MAX_LINE_CHARS) if t.job.secret_name else ""
    labels = tuple(sorted((clean_text(k, 100), clean_text(v, 200)) for k, v in t.job.labels.items()))
    return TransitionView(
        event=event,
        severity=severity,
        emoji=event_emoji(event, severity),
        is_test=event == "TEST",
        source=clean_text(t.source, 80),
        title=title,
        outcome=outcome_text(event, success_word),
        job_id=clean_text(t.job_id, MAX_LINE_CHARS) or "?",
        endpoint=clean_text(t.job.endpoint, MAX_LINE_CHARS) or NOT_AVAILABLE,
        location_label=location_label,
        location=location,
        collections=_collections(t),
        phase_change=phase_change_text(t),
        phase_unchanged=_is_placeholder(t)
        or (t.previous is not None and t.previous.phase == t.current.phase),
        progress=format_progress(t.current.progress),
        eta=eta_text(t),
        duration=duration_text(t),
        facts=_facts(source, t),
        error=error or None,
        note=note or None,
        secret_name=(secret or NO_SECRET) if event == "AUTH_FAILED" else None,
        labels=labels,
        transition_id=clean_text(t.transition_id, 200),
        occurred_at=format_timestamp(t.occurred_at),
    )


def phase_brief(view: TransitionView) -> str:
    """The phase as a headline's parenthesis: `RUNNING → FAILED`, `still RUNNING`, `not observed yet`."""
    if view.phase_unchanged and view.phase_change != NOT_OBSERVED:
        return f"still {view.phase_change.removesuffix(' (unchanged)')}"
    return view.phase_change
