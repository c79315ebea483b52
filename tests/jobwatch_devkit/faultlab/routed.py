"""Per-destination invariants: what each destination received against where the routes send the
ground truth.

Each destination's receipts are read where its consumer would read them (the Slack webhook's posts,
a Slack app channel's thread replies, e-mails, events on the bus's SQS tap, the webhook receiver's
verified 2xx requests) as `Seen` (transition id, and whether the sender saw that copy succeed), in
arrival order. Against the transitions the routes send there (`jobwatch.domain.routing` on the
ground truth) a `Tally` counts:

- expected / delivered / lost: routed there (an expected event never published counts as lost at
  every destination it would have gone to), shown there at least once, not shown;
- duplicated: copies beyond the first that the sender saw succeed (dedupe must prevent them);
- ambiguous: copies whose send the sender saw fail although the destination took them (a lost
  answer: no sender can tell it from a rejected one), counted apart, honestly, never as duplicated;
- false: transitions shown there that did not happen or were not routed there;
- out_of_order: job stories whose first copies arrived in another order than recorded (ordered
  destinations only count towards `ok`: EventBridge is unordered by design);
- dead_lettered, refused: letters naming the destination, and sends it refused as malformed.
"""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from jobwatch.domain.model import Transition
from jobwatch.domain.routing import Route, route
from jobwatch.domain.transitions import parse_transition_id

from .destinations import expected_destinations
from .schedules import Schedule

__all__ = ["Seen", "Tally", "mark_ambiguous", "tally_destinations"]


@dataclass(frozen=True, slots=True)
class Seen:
    """One copy a destination received: its transition id, and whether the sender saw it succeed."""

    tid: str
    clean: bool = True


def mark_ambiguous(tids: Iterable[str], ambiguous: Mapping[str, int]) -> list[Seen]:
    """Copies in arrival order; per transition, the last `ambiguous[tid]` copies were unanswered."""
    tids = list(tids)
    total = Counter(tids)
    seen: Counter[str] = Counter()
    out = []
    for tid in tids:
        seen[tid] += 1
        out.append(Seen(tid, clean=seen[tid] <= total[tid] - ambiguous.get(tid, 0)))
    return out


@dataclass
class Tally:
    name: str = ""
    ordered: bool = True
    expected: int = 0
    delivered: int = 0
    lost: int = 0
    duplicated: int = 0
    ambiguous: int = 0
    false: int = 0
    out_of_order: int = 0
    dead_lettered: int = 0
    refused: int = 0

    @property
    def ok(self) -> bool:
        order = self.out_of_order if self.ordered else 0
        return not (self.lost or self.duplicated or self.false or order or self.refused)

    def add(self, other: Tally) -> None:
        self.name, self.ordered = other.name, other.ordered
        for f in fields(self):
            value = getattr(other, f.name)
            if isinstance(value, int) and not isinstance(value, bool):
                setattr(self, f.name, getattr(self, f.name) + value)

    def summary(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "name"}
        out["ok"] = self.ok
        return out


def _tid_order(tid: str) -> tuple[str, int, int]:
    ref = parse_transition_id(tid)
    return ("", 0, 0) if ref is None else ref.order


def _story(tid: str) -> str:
    ref = parse_transition_id(tid)
    return f"{tid.rpartition('#')[0]}#?" if ref is None else f"{ref.job_key}#{ref.life}"


@dataclass
class Ground:
    """Where the ground truth must arrive: per destination, the expected count and the transition
    ids (of expected events that reached SNS) routed there."""

    expected: Counter[str] = field(default_factory=Counter)
    routed: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))


def ground_truth(
    routes: Sequence[Route],
    schedules: Sequence[Schedule],
    matched: set[str],
    first_seen: Mapping[str, Transition],
) -> Ground:
    """Expected deliveries per destination from the routes (pure router) on the expected events."""
    ground = Ground()
    for schedule in schedules:
        for event in schedule.expected:
            ground.expected.update(expected_destinations(routes, schedule.spec, event))
    for tid in matched:
        for delivery in route(routes, first_seen[tid]):
            ground.routed[delivery.destination_id].add(tid)
    return ground


def tally(
    name: str,
    expected: int,
    routed: set[str],
    seen: Sequence[Seen],
    *,
    ordered: bool,
    problems: list[str],
) -> Tally:
    """One destination's counts (see the module docstring)."""
    shown = {s.tid for s in seen}
    clean = Counter(s.tid for s in seen if s.clean)
    t = Tally(name=name, ordered=ordered, expected=expected)
    t.delivered = len(routed & shown)
    t.lost = expected - t.delivered
    t.duplicated = sum(n - 1 for n in clean.values() if n > 1)
    t.ambiguous = sum(1 for s in seen if not s.clean)
    t.false = len(shown - routed)
    late = _late_stories(seen)
    t.out_of_order = len(late)
    _explain(name, routed, shown, clean, late, problems)
    return t


def _late_stories(seen: Sequence[Seen]) -> list[str]:
    """Job stories whose first copies arrived in another order than their transitions were recorded."""
    order: dict[str, list[str]] = defaultdict(list)
    for tid in dict.fromkeys(s.tid for s in seen):
        order[_story(tid)].append(tid)
    return [story for story, tids in order.items() if sorted(tids, key=_tid_order) != tids]


def _explain(
    name: str, routed: set[str], shown: set[str], clean: Counter[str], late: list[str], problems: list[str]
) -> None:
    for tid in sorted(routed - shown)[:10]:
        problems.append(f"{name}: {tid} routed there, never shown")
    for tid in sorted(shown - routed)[:10]:
        problems.append(f"{name}: {tid} shown there, not routed there (false)")
    for tid, n in itertools.islice(((t, n) for t, n in clean.items() if n > 1), 10):
        problems.append(f"{name}: {tid} shown {n} times with a clean answer")
    for story in late[:10]:
        problems.append(f"{name}: {story} out of order")


def tally_destinations(
    ground: Ground,
    names: Mapping[str, str],
    seen: Mapping[str, Sequence[Seen]],
    unordered: frozenset[str],
    problems: list[str],
) -> dict[str, Tally]:
    """Every destination's tally, keyed by its summary name."""
    out: dict[str, Tally] = {}
    for destination_id, name in names.items():
        out[name] = tally(
            name,
            ground.expected.get(destination_id, 0),
            ground.routed.get(destination_id, set()),
            seen.get(destination_id, []),
            ordered=destination_id not in unordered,
            problems=problems,
        )
    return out
