"""The alert e-mail of a transition: an ASCII subject line and a plain-text body."""

from __future__ import annotations

from jobwatch.domain.model import Transition
from jobwatch.domain.text import ellipsize, to_ascii
from jobwatch.render.view import (
    MAX_LINE_CHARS,
    TEST_NOTICE,
    TransitionView,
    cap_block,
    collections_text,
    describe,
    labels_text,
    phase_brief,
)

MAX_SUBJECT_CHARS = 100
"""SNS rejects (or cuts) email subjects longer than this."""


MAX_EMAIL_ERROR_CHARS = 4000
"""An upstream error can be a whole stack trace; the email keeps the head, which names the cause."""


MAX_NOTE_CHARS = 4000
"""A `note` quotes the last poll error, which can be a whole response body: the email keeps its head."""


_MAX_EMAIL_FACTS = 50


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
        lines += _block_lines("Why", cap_block(view.note, MAX_NOTE_CHARS))
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
        *([_line("ETA", view.eta)] if view.eta else []),
        _line("Duration", view.duration),
    ]
    facts = view.facts[:_MAX_EMAIL_FACTS]
    lines += [_line(f.label, ellipsize(f.value, MAX_LINE_CHARS)) for f in facts]
    if len(view.facts) > len(facts):
        lines.append(f"(+{len(view.facts) - len(facts)} more facts)")
    lines.append(_line("Labels", ellipsize(labels_text(view.labels), 1_000)))
    if view.error:
        lines += ["", "Error:"]
        capped = cap_block(view.error, MAX_EMAIL_ERROR_CHARS)
        lines += [f"    {row}".rstrip() for row in capped.split("\n")]
    lines += [
        "",
        _line("Transition", view.transition_id),
        _line("Occurred at", view.occurred_at),
        "",
        "-- jobwatch",
    ]
    return "\n".join(line.rstrip() for line in lines) + "\n"
