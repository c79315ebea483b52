"""Snooze and mute: which of a job's transitions are held back from every destination (pure).

A muted job publishes nothing. A snoozed job publishes only urgent events (`URGENT_EVENTS`: the
ones someone must act on) until the snooze ends. Held-back transitions are not queued for later:
they are counted in the job's health (`Health.suppressed`, `last_suppressed`), in the same write
that records the state they describe, and `jobwatch show` / the API show the count. The stored
state moves on as usual, so the first event after the snooze tells the story from where it is.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from jobwatch.domain.model import Health, Quiet

URGENT_EVENTS = frozenset({"FAILED", "LOST", "AUTH_FAILED"})
"""Events a snooze lets through (a mute does not)."""
MIN_SNOOZE_S = 60.0
MAX_SNOOZE_S = 30 * 86400.0
"""A snooze is for hours or days; forever is what mute is for."""

_DURATION = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")


class BadDuration(ValueError):
    """Not a duration `jobwatch snooze --for` accepts; the message says what would be."""


def parse_duration(text: str) -> float:
    """`4h`, `90m`, `1d12h`, `3600s` -> seconds, between `MIN_SNOOZE_S` and `MAX_SNOOZE_S`."""
    found = _DURATION.fullmatch(text.strip().lower()) if text else None
    if found is None or not any(found.groups()):
        raise BadDuration(f"{text!r} is not a duration: use e.g. 4h, 90m, 1d12h")
    days, hours, minutes, seconds = (int(part or 0) for part in found.groups())
    total = ((days * 24 + hours) * 60 + minutes) * 60 + seconds
    if not MIN_SNOOZE_S <= total <= MAX_SNOOZE_S:
        raise BadDuration(f"{text!r}: a snooze lasts between 1 minute and 30 days (mute has no end)")
    return float(total)


def _at(iso: str) -> datetime:
    return datetime.fromisoformat(iso.replace("Z", "+00:00"))


def snoozed_at(quiet: Quiet, now_iso: str) -> bool:
    return quiet.snoozed_until is not None and _at(now_iso) < _at(quiet.snoozed_until)


def held_back(quiet: Quiet, event: str, now_iso: str) -> bool:
    """Whether this event of the job is left unpublished now."""
    if quiet.muted:
        return True
    return event not in URGENT_EVENTS and snoozed_at(quiet, now_iso)


def count_held_back(health: Health, events: list[str], now_iso: str) -> Health:
    """The job's health with these held-back events counted (unchanged when there are none)."""
    if not events:
        return health
    last = f"{events[-1]} at {now_iso}"
    return health.model_copy(update={"suppressed": health.suppressed + len(events), "last_suppressed": last})


def snooze(quiet: Quiet, now_iso: str, seconds: float, actor: str) -> Quiet:
    until = (_at(now_iso) + timedelta(seconds=seconds)).isoformat(timespec="seconds")
    return quiet.model_copy(update={"snoozed_until": until, "snoozed_by": actor})


def unsnooze(quiet: Quiet) -> Quiet:
    return quiet.model_copy(update={"snoozed_until": None, "snoozed_by": None})


def mute(quiet: Quiet, actor: str) -> Quiet:
    return quiet.model_copy(update={"muted": True, "muted_by": actor})


def unmute(quiet: Quiet) -> Quiet:
    return quiet.model_copy(update={"muted": False, "muted_by": None})
