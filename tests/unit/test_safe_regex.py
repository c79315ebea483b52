"""Route label patterns: the shapes that backtrack without bound are refused, useful ones pass."""

from __future__ import annotations

import re

import pytest
from pydantic import ValidationError

from jobwatch.domain.routing import LabelMatch, LabelOp
from jobwatch.domain.safe_regex import regex_problem


@pytest.mark.parametrize(
    "pattern",
    [
        "prod-.*",
        "^team-(search|ads)$",
        "(?:eu|us)-[0-9]+",
        "eu-west-[0-9]{1,2}",
        "a.*b.*c.*",
        "(x)?y",
        "[)]+",
        r"\)+",
        "[^]]*",
        r"v\d+\.\d+",
        ".*?-nightly",
        "(a|b|c|d|e|f|g|h|i)",
    ],
)
def test_useful_patterns_are_accepted(pattern: str) -> None:
    re.compile(pattern)
    assert regex_problem(pattern) is None
    assert LabelMatch(key="k", op=LabelOp.MATCHES, value=pattern).op is LabelOp.MATCHES


@pytest.mark.parametrize(
    ("pattern", "why"),
    [
        ("(a+)+$", "repeated group"),
        ("(a|aa)*", "repeated group"),
        ("(?:ab){2,40}", "repeated group"),
        ("((a))+", "repeated group"),
        (r"(\w)\1", "backreferences"),
        ("(?P<x>a)(?P=x)", "backreferences"),
        ("(?=a)a", "lookarounds"),
        ("(?<!a)b", "lookarounds"),
        ("a*b*c*d*", "unbounded repeats"),
        ("a{2,}b{3,}c+d+", "unbounded repeats"),
        (".*.*.*(a|b)", "alternatives"),
        (".*.*(a|b)(c|d)(e|f)(g|h)(i|j)", "alternatives"),
        ("(a|a)(a|a)(a|a)(a|a)(a|a)(a|a)(a|a)(a|a)(a|a)", "alternatives"),
    ],
)
def test_patterns_that_can_backtrack_without_bound_are_refused(pattern: str, why: str) -> None:
    problem = regex_problem(pattern)
    assert problem is not None and why in problem
    with pytest.raises(ValidationError, match="refused"):
        LabelMatch(key="k", op=LabelOp.MATCHES, value=pattern)


def test_escaped_and_classed_metacharacters_do_not_count() -> None:
    assert regex_problem(r"\|\|\|\|\|\|\|\|\|.*.*.*") is None
    assert regex_problem("[|][|][|][|][|].*.*.*") is None
    assert regex_problem(r"[\]*+]+.*.*") is None
