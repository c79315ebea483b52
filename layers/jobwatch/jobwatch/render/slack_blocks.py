"""Slack Block Kit message for one transition, built within Slack's documented limits.

Upstream text is untrusted: a job error can contain `<!channel>`, `<@U123>` or `<https://evil|click>`.
Every upstream-derived string therefore goes through `fit()`, which escapes `&`, `<`, `>`, defuses
bare broadcast mentions and truncates on the raw text (never inside an `&amp;` entity). The error sits in
a code block whose fences it cannot close. A health event's `note` (which quotes the last poll error)
gets its own `Why` section right under the header, escaped and capped like the error. Text objects
are `verbatim` so Slack does not auto-link or auto-mention anything in them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from jobwatch.domain.humanize import NOT_AVAILABLE
from jobwatch.domain.model import Transition
from jobwatch.domain.text import clean_text
from jobwatch.render.view import (
    NO_SECRET,
    TEST_NOTICE,
    TransitionView,
    collections_text,
    describe,
    labels_text,
    phase_brief,
)

MAX_BLOCKS = 50


MAX_SECTION_CHARS = 3_000


MAX_FIELD_CHARS = 2_000


MAX_FIELDS_PER_SECTION = 10


MAX_HEADER_CHARS = 150


MAX_TEXT_OBJECT_CHARS = 3_000
"""Any other text object (context elements)."""


MAX_CONTEXT_ELEMENTS = 10


MAX_FALLBACK_CHARS = 40_000
"""Slack cuts the top-level `text` beyond this; ours stays far below (`_FALLBACK_CHARS`)."""


_FALLBACK_CHARS = 1_000


_CONTEXT_CHARS = 2_000


MENTION = re.compile(r"^(<@[UW][A-Z0-9]{2,20}>|<!subteam\^S[A-Z0-9]{2,20}>|<!here>|<!channel>)$")
"""The mention forms a route may add (domain.routing.MENTION_PATTERN)."""

_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}


_ENTITY_RE = re.compile("[&<>]")


# `@channel` typed as plain text can still notify a channel when Slack auto-parses; a word joiner
# after the `@` keeps it readable but inert.
_BROADCAST_RE = re.compile(r"@(?=channel|here|everyone)", re.IGNORECASE)


_BACKTICK_PAIR_RE = re.compile(r"`(?=`)")


_WORD_JOINER = "\u2060"


_ZERO_WIDTH_SPACE = "\u200b"


_MODIFIER_GRAVE = "\u02cb"
"""Looks like a backtick but does not end inline code."""


def slack_len(text: str) -> int:
    """Length as Slack counts it, conservatively: UTF-16 code units (an emoji can count as 2)."""
    return len(text.encode("utf-16-le")) // 2


def _defuse(text: str) -> str:
    return _BROADCAST_RE.sub("@" + _WORD_JOINER, text)


def escape(text: str) -> str:
    """Escape Slack's control characters and defuse broadcast mentions in one untrusted string."""
    return _ENTITY_RE.sub(lambda m: _ENTITIES[m.group()], _defuse(text))


def fit(raw: str, limit: int, note: str | None = None) -> str:
    """`raw` escaped and within `limit` (Slack length), cut on the raw text so no entity is split.

    `note` replaces the cut tail; by default `…`. Pass a longer note (e.g. the original length) where
    the reader should know how much is missing.
    """
    safe = _defuse(raw)
    full = _ENTITY_RE.sub(lambda m: _ENTITIES[m.group()], safe)
    if slack_len(full) <= limit:
        return full
    tail = note if note is not None else "…"
    budget = limit - slack_len(tail)
    if budget <= 0:
        return tail[:limit]
    pieces: list[str] = []
    used = 0
    for char in safe:
        piece = _ENTITIES.get(char, char)
        size = slack_len(piece)
        if used + size > budget:
            break
        pieces.append(piece)
        used += size
    return "".join(pieces).rstrip() + tail


def _truncation_note(raw: str) -> str:
    return f"… (truncated, {len(raw):,} chars)"


def _plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text, "emoji": True}


def _mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text, "verbatim": True}


def _inline_code(raw: str, limit: int) -> str:
    """Upstream text as inline code; its own backticks are swapped so it cannot end the span early."""
    if raw == NOT_AVAILABLE:
        return NOT_AVAILABLE
    return "`" + fit(raw.replace("`", _MODIFIER_GRAVE), limit - 2) + "`"


def _field(label: str, value: str, *, code: bool = False) -> dict[str, Any]:
    head = f"*{fit(label, 100)}*\n"
    room = MAX_FIELD_CHARS - slack_len(head)
    body = _inline_code(value, room) if code else fit(value, room)
    return _mrkdwn(head + body)


def _summary(view: TransitionView) -> str:
    if view.is_test:
        return f"*{TEST_NOTICE}.* This message only checks that jobwatch notifications reach this channel."
    return f"*{fit(view.title, 200)}*: {fit(view.outcome, 200)}"


def _fields(view: TransitionView) -> list[dict[str, Any]]:
    fields = [
        _field("Job id", view.job_id, code=True),
        _field("Kind", f"{view.title} ({view.source})"),
        _field("Collections", collections_text(view.collections)),
        _field(view.location_label, view.location),
        _field("Phase", view.phase_change),
        _field("Progress", view.progress),
        *([_field("ETA", view.eta)] if view.eta else []),
        _field("Duration", view.duration),
    ]
    if view.secret_name is not None:
        fields.append(_field("Secret", view.secret_name, code=view.secret_name != NO_SECRET))
    fields += [_field(fact.label, fact.value) for fact in view.facts]
    return fields


def _field_sections(view: TransitionView, max_sections: int) -> list[dict[str, Any]]:
    """Fields ten to a section; what would exceed the block budget becomes one `+N more` field."""
    fields = _fields(view)
    capacity = max_sections * MAX_FIELDS_PER_SECTION
    if len(fields) > capacity:
        hidden = len(fields) - capacity + 1
        fields = [*fields[: capacity - 1], _field("More facts", f"+{hidden} not shown")]
    sections: list[dict[str, Any]] = [
        {"type": "section", "fields": fields[start : start + MAX_FIELDS_PER_SECTION]}
        for start in range(0, len(fields), MAX_FIELDS_PER_SECTION)
    ]
    sections[0] = {"type": "section", "text": _mrkdwn(_summary(view)), **sections[0]}
    return sections


def _error_section(error: str) -> dict[str, Any]:
    """The error in a code block; backtick runs are broken up so the text cannot close the fence."""
    head, tail = "*Error*\n```\n", "\n```"
    fenced = _BACKTICK_PAIR_RE.sub("`" + _ZERO_WIDTH_SPACE, error)
    room = MAX_SECTION_CHARS - slack_len(head) - slack_len(tail)
    return {"type": "section", "text": _mrkdwn(head + fit(fenced, room, _truncation_note(error)) + tail)}


def _note_section(note: str) -> dict[str, Any]:
    """Why a health event fired, right under the header: the one line a reader needs first."""
    head = "*Why*\n"
    room = MAX_SECTION_CHARS - slack_len(head)
    return {"type": "section", "text": _mrkdwn(head + fit(note, room, _truncation_note(note)))}


def _context(view: TransitionView) -> dict[str, Any]:
    elements = [
        _mrkdwn(f"Transition {_inline_code(view.transition_id, 300)} · {fit(view.occurred_at, 64)}"),
        _mrkdwn(f"Endpoint: {fit(view.endpoint, _CONTEXT_CHARS - 20)}"),
    ]
    if view.labels:
        labels = labels_text(view.labels)
        elements.append(_mrkdwn(f"Labels: {fit(labels, _CONTEXT_CHARS - 20)}"))
    return {"type": "context", "elements": elements}


def _fallback_text(view: TransitionView) -> str:
    """The notification/preview line: what a phone lock screen shows."""
    job = f"{view.title} {view.job_id}"
    if view.is_test:
        raw = f"{view.emoji} {TEST_NOTICE} · {job}"
    else:
        where = f" ({collections_text(view.collections, 3)})" if view.collections else ""
        raw = f"{view.emoji} {view.event} · {job}{where}: {view.outcome} ({phase_brief(view)})"
        if view.note:
            raw += f" — {clean_text(view.note)}"
        if view.error:  # the lock screen and screen readers get the cause, not only the blocks
            raw += f" — error: {clean_text(view.error)}"
    return fit(raw, _FALLBACK_CHARS)


def mention_line(mentions: Sequence[str]) -> str:
    """Route mentions (`<!subteam^S…>`, `<@U…>`, `<!here>`), which routes validated; never built from
    upstream text, which stays escaped everywhere else."""
    return " ".join(m for m in mentions if MENTION.match(m))


def render_payload(t: Transition, mentions: Sequence[str] = ()) -> dict[str, Any]:
    """Incoming-webhook payload: fallback `text`, then header, mentions, note, fields, error, context."""
    view = describe(t)
    heading = fit(f"{view.emoji} {view.event} · {view.title}", MAX_HEADER_CHARS)
    header = {"type": "header", "text": _plain(heading)}
    who = mention_line(mentions)
    reserved = 2 + (1 if view.note else 0) + (1 if view.error else 0) + (1 if who else 0)
    blocks: list[dict[str, Any]] = [header]
    if who:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": who}})
    if view.note:
        blocks.append(_note_section(view.note))
    blocks += _field_sections(view, MAX_BLOCKS - reserved)
    if view.error:
        blocks.append(_error_section(view.error))
    blocks.append(_context(view))
    return {
        "text": f"{who} {_fallback_text(view)}" if who else _fallback_text(view),
        "blocks": blocks,
        "unfurl_links": False,
        "unfurl_media": False,
    }


def _check_text(obj: Any, where: str, limit: int, problems: list[str], *, plain_only: bool = False) -> None:
    if not isinstance(obj, Mapping):
        problems.append(f"{where}: not a text object")
        return
    kind = obj.get("type")
    allowed = ("plain_text",) if plain_only else ("plain_text", "mrkdwn")
    if kind not in allowed:
        problems.append(f"{where}.type: {kind!r} not in {allowed}")
    text = obj.get("text")
    if not isinstance(text, str) or not text:
        problems.append(f"{where}.text: empty or not a string")
    elif slack_len(text) > limit:
        problems.append(f"{where}.text: {slack_len(text)} chars > {limit}")


def _check_section(block: Mapping[str, Any], where: str, problems: list[str]) -> None:
    text, fields = block.get("text"), block.get("fields")
    if text is None and not fields:
        problems.append(f"{where}: section needs text or fields")
    if text is not None:
        _check_text(text, f"{where}.text", MAX_SECTION_CHARS, problems)
    if fields is not None:
        if not isinstance(fields, Sequence) or isinstance(fields, str):
            problems.append(f"{where}.fields: not a list")
            return
        if not fields:
            problems.append(f"{where}.fields: empty")
        if len(fields) > MAX_FIELDS_PER_SECTION:
            problems.append(f"{where}.fields: {len(fields)} fields > {MAX_FIELDS_PER_SECTION}")
        for j, field in enumerate(fields):
            _check_text(field, f"{where}.fields[{j}]", MAX_FIELD_CHARS, problems)


def _check_elements(
    block: Mapping[str, Any], where: str, limit: int, check: Callable[[Any, str], None], problems: list[str]
) -> None:
    """A context or actions block: a non-empty list of at most `limit` elements, each checked."""
    elements = block.get("elements")
    if not isinstance(elements, Sequence) or isinstance(elements, str) or not elements:
        problems.append(f"{where}.elements: missing or empty")
        return
    if len(elements) > limit:
        problems.append(f"{where}.elements: {len(elements)} elements > {limit}")
    for j, element in enumerate(elements):
        check(element, f"{where}.elements[{j}]")


def _check_context(block: Mapping[str, Any], where: str, problems: list[str]) -> None:
    def text(element: Any, at: str) -> None:
        _check_text(element, at, MAX_TEXT_OBJECT_CHARS, problems)

    _check_elements(block, where, MAX_CONTEXT_ELEMENTS, text, problems)


MAX_ACTION_ELEMENTS = 25
MAX_BUTTON_TEXT_CHARS = 75
MAX_BUTTON_VALUE_CHARS = 2_000
MAX_ACTION_ID_CHARS = 255


def _check_button(element: Any, where: str, problems: list[str]) -> None:
    if not isinstance(element, Mapping) or element.get("type") != "button":
        problems.append(f"{where}: only buttons are used")
        return
    _check_text(element.get("text"), f"{where}.text", MAX_BUTTON_TEXT_CHARS, problems, plain_only=True)
    action_id, value = element.get("action_id"), element.get("value", "")
    if not isinstance(action_id, str) or not 0 < len(action_id) <= MAX_ACTION_ID_CHARS:
        problems.append(f"{where}.action_id: missing or longer than {MAX_ACTION_ID_CHARS}")
    if not isinstance(value, str) or len(value) > MAX_BUTTON_VALUE_CHARS:
        problems.append(f"{where}.value: not a string of at most {MAX_BUTTON_VALUE_CHARS}")


def _check_actions(block: Mapping[str, Any], where: str, problems: list[str]) -> None:
    _check_elements(block, where, MAX_ACTION_ELEMENTS, lambda e, at: _check_button(e, at, problems), problems)


_BLOCK_CHECKS = {"section": _check_section, "context": _check_context, "actions": _check_actions}


def validate_payload(payload: Mapping[str, Any]) -> list[str]:
    """Every way `payload` breaks Slack's limits, as readable strings; empty means safe to post."""
    problems: list[str] = []
    text = payload.get("text")
    if not isinstance(text, str) or not text.strip():
        problems.append("text: fallback text missing")
    elif slack_len(text) > MAX_FALLBACK_CHARS:
        problems.append(f"text: {slack_len(text)} chars > {MAX_FALLBACK_CHARS}")
    blocks = payload.get("blocks", [])
    if not isinstance(blocks, Sequence) or isinstance(blocks, str):
        return [*problems, "blocks: not a list"]
    if len(blocks) > MAX_BLOCKS:
        problems.append(f"blocks: {len(blocks)} blocks > {MAX_BLOCKS}")
    for i, block in enumerate(blocks):
        where = f"blocks[{i}]"
        if not isinstance(block, Mapping):
            problems.append(f"{where}: not an object")
            continue
        kind = block.get("type")
        if kind == "header":
            _check_text(block.get("text"), f"{where}.text", MAX_HEADER_CHARS, problems, plain_only=True)
        elif kind in _BLOCK_CHECKS:
            _BLOCK_CHECKS[str(kind)](block, where, problems)
        elif kind != "divider":
            problems.append(f"{where}.type: unsupported block type {kind!r}")
    return problems
