"""The CLI's pure rendering: progress bars, relative times, ETAs, details lines, job references,
the follow loop's exit codes and every flag's help text."""

from __future__ import annotations

import argparse
import io
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest
from jobwatch_tools.cli import build_parser
from jobwatch_tools.follow import (
    EXIT_NOT_ALL_SUCCEEDED,
    EXIT_TIMEOUT,
    Follow,
    Followed,
    Observation,
    PlainView,
    plain_line,
)
from jobwatch_tools.references import ReferenceProblem, resolve_reference
from jobwatch_tools.terminal import (
    detail_label,
    detail_lines,
    detail_value,
    eta_seconds,
    eta_text,
    progress_bar,
    progress_cell,
    relative_time,
    volume_text,
)

from jobwatch.domain.model import Phase, Snapshot

NOW = datetime(2025, 5, 1, 12, 0, 0, tzinfo=UTC)


def _ago(**delta: float) -> str:
    return (NOW - timedelta(**delta)).isoformat()


@pytest.mark.parametrize(
    ("progress", "bar"),
    [
        (0.0, "[--------------------]"),
        (4.9, "[--------------------]"),
        (5.0, "[#-------------------]"),
        (50.0, "[##########----------]"),
        (99.9, "[###################-]"),
        (100.0, "[####################]"),
        (250.0, "[####################]"),
        (-3.0, "[--------------------]"),
        (None, "[????????????????????]"),
        (float("nan"), "[????????????????????]"),
    ],
)
def test_progress_bar_is_ascii_and_clamped(progress: float | None, bar: str) -> None:
    assert progress_bar(progress) == bar


def test_progress_cell_starts_with_the_percent_as_one_word() -> None:
    assert progress_cell(40.0).split() == ["40%", "[########------------]"]
    assert progress_cell(99.99).split()[0] == "99.9%"  # a running job never reads 100%
    assert progress_bar(50.0, width=4) == "[##--]"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (_ago(seconds=2), "just now"),
        (_ago(seconds=45), "45 s ago"),
        (_ago(minutes=3, seconds=20), "3 min ago"),
        (_ago(hours=2, minutes=59), "2 h ago"),
        (_ago(days=1, hours=3), "1 day ago"),
        (_ago(days=4), "4 days ago"),
        ((NOW + timedelta(minutes=3)).isoformat(), "in 3 min"),
        ("2025-05-01T11:57:00Z", "3 min ago"),
        (None, "never"),
        ("not a time", "not a time"),
    ],
)
def test_relative_time(value: str | None, text: str) -> None:
    assert relative_time(value, NOW) == text


def test_eta_is_a_linear_estimate_or_unknown() -> None:
    assert eta_seconds(25.0, 60.0) == pytest.approx(180.0)
    assert eta_seconds(50.0, 90.0) == pytest.approx(90.0)
    assert eta_text(25.0, 60.0) == "ETA 3m 00s"
    for progress, elapsed in ((0.0, 60.0), (None, 60.0), (50.0, None), (50.0, 0.0), (100.0, 60.0)):
        assert eta_seconds(progress, elapsed) is None
        assert eta_text(progress, elapsed) == "ETA unknown"


def test_details_become_aligned_labelled_lines() -> None:
    details = {
        "objectsExported": 1234,
        "collections": ["A", "B", "C", "D", "E", "F", "G"],
        "shards": {"total": 4, "succeeded": 3, "perNode": {"n1": 1}},
        "sizeGiB": 1.5,
        "timestampsObserved": True,
        "path": None,
    }
    assert detail_lines(details) == [
        "  collections:         A, B, C, D, E, +2 more",
        "  objects exported:    1,234",
        "  path:                -",
        "  shards:              perNode={1 fields}, succeeded=3, total=4",
        "  size GiB:            1.5",
        "  timestamps observed: yes",
    ]
    assert detail_lines({}) == []
    assert detail_label("incrementalBaseBackupId") == "incremental base backup id"
    assert detail_label("files_failed") == "files failed"
    assert detail_value([]) == "(none)" and detail_value({}) == "-"
    assert detail_value([[1, 2], {"a": 1}]) == "[2 items], {1 fields}"


def test_volume_names_rows_objects_or_records() -> None:
    assert volume_text({"importedRows": 400, "totalRows": 1000}) == "rows 400/1,000"
    assert volume_text({"importedRows": 400}) == "rows 400"
    assert volume_text({"objectsExported": 12}) == "objects 12"
    assert volume_text({"recordsImported": 3}) == "records 3"
    assert volume_text({"objectsExported": True, "other": 1}) is None


JOBS = [
    ("weaviate-export.aaa111", "exp-1"),
    ("weaviate-export.aab222", "exp-2"),
    ("zilliz-import-v1.ccc333", "exp-1"),
    ("milvus-import.ddd444", "weaviate-export.aaa111x"),
]


def test_a_reference_is_a_full_key_a_job_id_or_a_unique_key_prefix() -> None:
    assert resolve_reference("weaviate-export.aaa111", JOBS) == "weaviate-export.aaa111"
    assert resolve_reference("exp-2", JOBS) == "weaviate-export.aab222"
    assert resolve_reference("weaviate-export.aab", JOBS) == "weaviate-export.aab222"
    assert resolve_reference("zil", JOBS) == "zilliz-import-v1.ccc333"
    # an exact job id wins over a key prefix it also is
    assert resolve_reference("weaviate-export.aaa111x", JOBS) == "milvus-import.ddd444"


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        (
            "exp-1",
            "'exp-1' matches 2 tracked jobs: weaviate-export.aaa111, zilliz-import-v1.ccc333; "
            "give more of the key",
        ),
        (
            "weaviate-export.aa",
            "'weaviate-export.aa' matches 2 tracked jobs: weaviate-export.aaa111, weaviate-export.aab222; "
            "give more of the key",
        ),
        ("nope", "no tracked job matches 'nope' (give a job id, a key prefix or the full key)"),
        ("", "an empty job reference names no job"),
    ],
)
def test_an_ambiguous_or_unknown_reference_is_one_line(ref: str, message: str) -> None:
    with pytest.raises(ReferenceProblem) as problem:
        resolve_reference(ref, JOBS)
    assert str(problem.value) == message


def test_an_ambiguous_reference_lists_at_most_five_keys() -> None:
    many = [(f"milvus-import.{n:03d}", f"job-{n}") for n in range(8)]
    with pytest.raises(ReferenceProblem) as problem:
        resolve_reference("milvus-import.", many)
    assert str(problem.value).count("milvus-import.0") == 5 and "and 3 more" in str(problem.value)


def _snap(phase: Phase, progress: float | None = None, **fields: object) -> Snapshot:
    return Snapshot.model_validate({"phase": phase, "status": phase.value, "progress": progress, **fields})


def test_plain_line_shows_phase_bar_volume_elapsed_and_eta() -> None:
    job = Followed("exp-1")
    started = _ago(minutes=2)
    job.update(
        Observation("exp-1", _snap(Phase.RUNNING, 40.0, startedAt=started, details={"objectsExported": 9})),
        NOW,
    )
    assert plain_line(job, NOW) == (
        "2025-05-01T12:00:00Z  exp-1  RUNNING  40% [########------------]  objects 9  "
        "elapsed 2m 00s  ETA 3m 00s"
    )
    job.update(Observation("exp-1", error="TIMEOUT: no answer"), NOW)  # the last snapshot stays
    assert plain_line(job, NOW).endswith("ETA 3m 00s  poll failed: TIMEOUT: no answer")
    gone = Followed("k")
    gone.update(Observation("k", gone=True), NOW)
    assert gone.terminal and not gone.succeeded
    assert (
        plain_line(gone, NOW)
        == "2025-05-01T12:00:00Z  k  UNTRACKED  elapsed 0s  done  untracked while followed"
    )


class _Script:
    """A fetch that serves scripted observations, one list per refresh (the last repeats)."""

    def __init__(self, refreshes: Sequence[Sequence[Observation]]) -> None:
        self.refreshes = list(refreshes)

    def __call__(self) -> Sequence[Observation]:
        return self.refreshes.pop(0) if len(self.refreshes) > 1 else self.refreshes[0]


def _follow(refreshes: Sequence[Sequence[Observation]], timeout_s: float | None = None) -> tuple[int, str]:
    out = io.StringIO()
    ticks = iter(range(1000))
    follow = Follow(
        _Script(refreshes),
        PlainView(out),
        interval_s=1.0,
        timeout_s=timeout_s,
        clock=lambda: float(next(ticks)),
        sleep=lambda _: None,
        now=lambda: NOW,
    )
    return follow.run(), out.getvalue()


def test_follow_exits_0_1_or_3_and_prints_only_changes() -> None:
    running = Observation("a", _snap(Phase.RUNNING, 10.0))
    code, out = _follow([[running], [running], [Observation("a", _snap(Phase.SUCCEEDED, 100.0))]])
    assert code == 0 and len(out.splitlines()) == 3  # RUNNING once, SUCCEEDED, the outcome
    code, out = _follow(
        [
            [running, Observation("b", _snap(Phase.CANCELED))],
            [
                Observation("a", _snap(Phase.SUCCEEDED, 100.0)),
                Observation("b", _snap(Phase.CANCELED)),
            ],
        ]
    )
    assert code == EXIT_NOT_ALL_SUCCEEDED and out.splitlines()[-1].endswith(
        "finished: 1 CANCELED, 1 SUCCEEDED"
    )
    code, out = _follow([[running]], timeout_s=5)
    assert code == EXIT_TIMEOUT and out.splitlines()[-1].endswith("timed out: 1 RUNNING")


def _actions(parser: argparse.ArgumentParser, path: str = "jobwatch") -> list[tuple[str, argparse.Action]]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found += _actions(sub, f"{path} {name}")
        elif not isinstance(action, argparse._HelpAction):
            found.append((path, action))
    return found


def test_every_flag_of_every_subcommand_has_a_help_text() -> None:
    missing = [f"{path} {action.dest}" for path, action in _actions(build_parser()) if not action.help]
    assert missing == []
    helps = {(path, action.dest): action.help or "" for path, action in _actions(build_parser())}
    for command in ("jobwatch run", "jobwatch follow"):
        assert "seconds" in helps[(command, "interval")]
    assert (
        "seconds" in helps[("jobwatch follow", "timeout")]
        and "exit 3" in helps[("jobwatch follow", "timeout")]
    )
