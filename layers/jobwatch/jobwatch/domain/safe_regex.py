"""Which label patterns a route may hold.

Python's `re` backtracks: a pattern like `(a+)+$` takes exponential time on a 30-character value,
and a route is evaluated for every transition of every job. Route patterns come from users, so
they are restricted to a shape whose worst case is polynomial and small on a 256-character label:
no repeated group (an optional one is fine), no backreference, no lookaround, and few unbounded repeats (D38).
"""

from __future__ import annotations

MAX_UNBOUNDED_REPEATS = 3
"""`.*a.*b.*` is fine; with k unbounded repeats a failing match costs about n^k/k! steps."""
MAX_ALTERNATIVES = 8
"""Each `|` can double the paths tried, and the paths multiply with the repeats around them."""
_ALTERNATIVES_WITH_REPEATS = {0: MAX_ALTERNATIVES, 1: MAX_ALTERNATIVES, 2: 4, 3: 0}
"""The budget that keeps the worst failing match near 20 ms on a 256-character label (D38)."""

_REPEAT_CHARS = frozenset("*+?{")
_LOOKAROUNDS = ("(?=", "(?!", "(?<=", "(?<!")


def regex_problem(pattern: str) -> str | None:
    """Why `pattern` is refused as a route label pattern (None: it is accepted)."""
    for lookaround in _LOOKAROUNDS:
        if lookaround in pattern:
            return f"lookarounds ({lookaround}…) are not supported"
    if "(?P=" in pattern:
        return "backreferences are not supported"
    unbounded = alternatives = 0
    index = 0
    previous_closed_group = False
    while index < len(pattern):
        char = pattern[index]
        if char == "\\":
            escaped = pattern[index + 1 : index + 2]
            if escaped.isdigit() and escaped != "0":
                return "backreferences are not supported"
            index += 2
            previous_closed_group = False
            continue
        if char == "[":
            index = _end_of_class(pattern, index)
            previous_closed_group = False
            continue
        if char in _REPEAT_CHARS:
            if previous_closed_group and char != "?":
                return "a repeated group (…)+ can take exponential time; repeat single characters or classes"
            if char in "*+" or (char == "{" and _is_open_range(pattern, index)):
                unbounded += 1
        alternatives += char == "|"
        previous_closed_group = char == ")"
        index += 1
    return _budget_problem(unbounded, alternatives)


def _budget_problem(unbounded: int, alternatives: int) -> str | None:
    if unbounded > MAX_UNBOUNDED_REPEATS:
        return f"at most {MAX_UNBOUNDED_REPEATS} unbounded repeats (*, +, {{n,}})"
    allowed = _ALTERNATIVES_WITH_REPEATS[unbounded]
    if alternatives > allowed:
        return (
            f"too many alternatives (|) for {unbounded} unbounded repeats: at most {allowed};"
            " split the route or use a character class"
        )
    return None


def _end_of_class(pattern: str, start: int) -> int:
    """Index just after the character class opening at `start` (`]` first in the class is literal)."""
    index = start + 1
    if pattern[index : index + 1] == "^":
        index += 1
    if pattern[index : index + 1] == "]":
        index += 1
    while index < len(pattern) and pattern[index] != "]":
        index += 2 if pattern[index] == "\\" else 1
    return index + 1


def _is_open_range(pattern: str, start: int) -> bool:
    """`{n,}` repeats without bound; `{n}` and `{n,m}` do not."""
    end = pattern.find("}", start)
    return end != -1 and pattern[start + 1 : end].endswith(",")
