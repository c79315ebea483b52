"""An identical answer is parsed once per job and process (`app.polling.LastAnswers`): the snapshot of
the last parse is reused only for the very same bytes, status and content type, and errors are never
remembered."""

from __future__ import annotations

import pytest

from jobwatch.app.polling import LastAnswers
from jobwatch.domain.errors import PollError, PollErrorKind
from jobwatch.domain.model import Phase, Snapshot


def _snapshot(status: str) -> Snapshot:
    return Snapshot(status=status, phase=Phase.RUNNING)


class Parser:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, status: str) -> Snapshot:
        self.calls += 1
        return _snapshot(status)


def test_the_same_answer_is_parsed_once_and_any_difference_parses_again() -> None:
    answers, parse = LastAnswers(), Parser()
    same = ("job-1", 200, "application/json", b'{"status":"STARTED"}')

    first = answers.snapshot("k", same, lambda: parse("STARTED"))
    again = answers.snapshot("k", same, lambda: parse("STARTED"))
    assert first is again and parse.calls == 1

    for changed in (
        ("job-1", 200, "application/json", b'{"status":"TRANSFERRING"}'),
        ("job-1", 200, "text/plain", b'{"status":"TRANSFERRING"}'),
        ("job-2", 200, "text/plain", b'{"status":"TRANSFERRING"}'),
    ):
        answers.snapshot("k", changed, lambda: parse("X"))
    assert parse.calls == 4
    assert answers.snapshot("other-job", same, lambda: parse("STARTED")) is not first  # per job
    assert parse.calls == 5


def test_an_answer_that_fails_to_parse_is_parsed_and_refused_every_time() -> None:
    answers, calls = LastAnswers(), []

    def refuse() -> Snapshot:
        calls.append(1)
        raise PollError(PollErrorKind.INVALID_BODY, "not JSON")

    for _ in range(2):
        with pytest.raises(PollError):
            answers.snapshot("k", ("j", 200, "", b"<html>"), refuse)
    assert len(calls) == 2


def test_past_its_limit_the_oldest_job_is_forgotten() -> None:
    answers, parse = LastAnswers(limit=2), Parser()
    for key in ("a", "b", "c"):
        answers.snapshot(key, ("j", 200, "", key.encode()), lambda: parse("S"))
    answers.snapshot("c", ("j", 200, "", b"c"), lambda: parse("S"))
    answers.snapshot("b", ("j", 200, "", b"b"), lambda: parse("S"))
    assert parse.calls == 3  # b and c still known
    answers.snapshot("a", ("j", 200, "", b"a"), lambda: parse("S"))
    assert parse.calls == 4  # a was evicted
