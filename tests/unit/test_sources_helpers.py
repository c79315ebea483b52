"""The shared source helpers: error-body reading, strict readers, list capping and fact formatting."""

from __future__ import annotations

import json
from typing import Any

import pytest

from jobwatch.domain.errors import PollError, PollErrorKind
from jobwatch.domain.model import Phase
from jobwatch.sources import _facts, source_names
from jobwatch.sources._shape import capped, error_text, opt_int, opt_number, opt_timestamp, progress_for


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"error":[{"message":"export not found"}]}', ("export not found", None)),
        (b'{"code":401,"message":"unauthorized"}', ("unauthorized", 401)),
        (b'{"code":2100,"message":" gone "}', ("gone", 2100)),
        (
            b'{"error":{"code":"NOT_FOUND","message":"no such import"},"status":404}',
            ("no such import", "NOT_FOUND"),
        ),
        (b'{"error":"plain string"}', ("plain string", None)),
        (b'{"code": 7}', ('{"code": 7}', 7)),
        (b"upstream connect error", ("upstream connect error", None)),
        (
            b"<html><head><title>503 Service Unavailable</title></head></html>",
            ("503 Service Unavailable", None),
        ),
        (b"<html><body><h1>Oops</h1> <p>try later</p></body></html>", ("Oops try later", None)),
        (b"", (None, None)),
        (b"   \n", (None, None)),
        (b"[" * 5000, ("[" * 197 + "...", None)),
        (b"\xff\xfe\xfd", ("\ufffd\ufffd\ufffd", None)),
    ],
)
def test_error_text_reads_every_known_shape(body: bytes, expected: tuple[str | None, Any]) -> None:
    assert error_text(body) == expected


def test_opt_int_accepts_integral_floats_only() -> None:
    assert opt_int({"n": 5.0}, "n") == 5
    assert opt_int({"n": None}, "n") is None
    assert opt_int({}, "n") is None
    for bad in (5.5, True, "5", float("inf"), 2**63):
        with pytest.raises(PollError) as info:
            opt_int({"n": bad}, "n", "data")
        assert info.value.kind is PollErrorKind.INVALID_BODY
        assert "data.n" in info.value.message


def test_opt_number_rejects_non_finite() -> None:
    assert opt_number({"n": 3}, "n") == 3.0
    for bad in (float("nan"), float("-inf"), False, [1]):
        with pytest.raises(PollError):
            opt_number({"n": bad}, "n")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-08-20T02:00:00.123Z", "2026-08-20T02:00:00.123000Z"),
        ("2024-04-01T14:17:55+08:00", "2024-04-01T06:17:55Z"),
        ("2024-04-01T06:17:55", "2024-04-01T06:17:55Z"),
        ("0001-01-01T00:00:00.000Z", None),
        ("9999-12-31T23:59:59-23:59", None),
        ("Unknown type", None),
        ("", None),
        ("soon", None),
        (None, None),
    ],
)
def test_opt_timestamp(value: str | None, expected: str | None) -> None:
    assert opt_timestamp({"t": value}, "t") == expected


def test_capped_keeps_flagged_entries_first() -> None:
    assert capped(list(range(5)), 10) == ([0, 1, 2, 3, 4], 0)
    assert capped(list(range(5)), 3) == ([0, 1, 2], 2)
    assert capped(list(range(6)), 3, first=lambda n: n % 2 == 1) == ([1, 3, 5], 3)
    # Without a cap, order is upstream order even with a `first` rule.
    assert capped([0, 1], 3, first=lambda n: n == 1) == ([0, 1], 0)


@pytest.mark.parametrize(
    ("phase", "running", "expected"),
    [
        (Phase.SUCCEEDED, 99.5, 100.0),
        (Phase.SUCCEEDED, None, 100.0),
        (Phase.FAILED, 40.0, None),
        (Phase.CANCELED, 40.0, None),
        (Phase.RUNNING, 40.123, 40.12),
        (Phase.RUNNING, -5.0, 0.0),
        (Phase.PENDING, None, None),
    ],
)
def test_progress_rule(phase: Phase, running: float | None, expected: float | None) -> None:
    assert progress_for(phase, running) == expected


def test_fact_formatting() -> None:
    assert _facts.count(520161) == "520,161"
    assert _facts.count(True) is None
    assert _facts.byte_size(512) == "512 B"
    assert _facts.byte_size(26571700) == "25.3 MiB"
    assert _facts.byte_size(5 * 1024**6) == "5120.0 PiB"
    assert _facts.byte_size(-1) is None
    assert _facts.rows(520161, 1000000) == "520,161 of 1,000,000"
    assert _facts.rows(None, 100000) == "100,000 total"
    assert _facts.rows(7, None) == "7"
    assert _facts.rows(0, 0) is None
    assert _facts.rows(None, None) is None
    assert _facts.progress_of(5, 7, (1, "failed"), (0, "skipped")) == "5/7 done · 1 failed"
    assert _facts.progress_of(0, 0) is None
    assert _facts.listing([], lambda e: "x", 4) == "4 not listed"
    assert _facts.listing("junk", lambda e: "x") is None
    entries = [{"n": str(i)} for i in range(5)]
    assert _facts.listing(entries, lambda e: e["n"], 2) == "0; 1; 2; +4 more"


def test_every_registered_source_is_importable_and_named_after_its_key() -> None:
    from jobwatch.sources import get_source

    for name in source_names():
        source = get_source(name)
        assert source.name == name
        assert source.title and source.success_word
        json.dumps(list(source.required_fields))
