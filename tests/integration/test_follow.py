"""`jobwatch follow` and short job references, against moto server and the upstream simulator.

Pipe mode runs in process (capsys: stdout is not a terminal, so one timestamped line per change);
terminal mode runs the installed console script on a pseudo-terminal and reads what rich drew.
Intervals are a few hundredths of a second so each test takes about a second.
"""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest
from jobwatch_tools.cli import main

from jobwatch_devkit.harness import LocalDeployment
from jobwatch_devkit.simulator import UpstreamSimulator, state

pytestmark = pytest.mark.integration

EXPORT = "weaviate-export"
ZILLIZ = "zilliz-import-v1"
PINECONE = "pinecone-import"
CLUSTER = "in01-follow01"
FAST = ["--interval", "0.05"]
STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ  ")

Capture = pytest.CaptureFixture[str]


def _run(capsys: Capture, *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _track_zilliz(deployment: LocalDeployment, sim_url: str, job_id: str) -> str:
    job = deployment.track(source=ZILLIZ, endpoint=sim_url, job_id=job_id, cluster_id=CLUSTER)
    return job.key


def _track_export(deployment: LocalDeployment, sim_url: str, job_id: str) -> str:
    return deployment.track(source=EXPORT, endpoint=sim_url, job_id=job_id, backend="s3").key


# -- pipe mode ---------------------------------------------------------------------------------------------


def test_follow_prints_a_line_per_change_and_exits_0_when_the_job_succeeds(
    deployment: LocalDeployment, sim: UpstreamSimulator, sim_url: str, capsys: Capture
) -> None:
    sim.add_job(
        PINECONE, "imp-ok", [state("InProgress", progress=50, rows=500), state("Completed", rows=1000)]
    )
    key = deployment.track(source=PINECONE, endpoint=sim_url, job_id="imp-ok").key

    code, out, err = _run(capsys, "follow", "imp-ok", "--poll", *FAST)  # a job id is a reference
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert all(STAMP.match(line) for line in lines), out
    running = [line for line in lines if "  RUNNING  " in line]
    assert len(running) == 1, out  # unchanged refreshes print nothing
    assert f"  {key}  RUNNING  50% [##########----------]  records 500  elapsed 1m " in running[0]
    assert "ETA 1m" in running[0]  # the simulator started it a minute ago: half done, a minute to go
    assert f"  {key}  SUCCEEDED  100% [####################]  records 1,000" in lines[-2]
    assert lines[-2].endswith("  done")
    assert lines[-1].endswith("  finished: 1 SUCCEEDED")


def test_follow_exits_1_when_a_job_fails_and_shows_its_error(
    deployment: LocalDeployment, sim: UpstreamSimulator, sim_url: str, capsys: Capture
) -> None:
    sim.add_job(
        EXPORT,
        "exp-bad",
        [state("TRANSFERRING", objects=7), state("FAILED", error="disk full")],
        backend="s3",
    )
    sim.add_job(EXPORT, "exp-good", [state("SUCCESS", objects=9)], backend="s3")
    bad = _track_export(deployment, sim_url, "exp-bad")
    good = _track_export(deployment, sim_url, "exp-good")

    code, out, err = _run(capsys, "follow", bad, good[:-2], "--poll", *FAST)  # full key, key prefix
    assert (code, err) == (1, "")
    assert any(f"  {bad}  RUNNING  0% " in line and "objects 7" in line for line in out.splitlines())
    assert any(f"  {bad}  FAILED  " in line and "error: disk full" in line for line in out.splitlines())
    assert out.splitlines()[-1].endswith("  finished: 1 FAILED, 1 SUCCEEDED")


def test_follow_reads_the_store_without_polling_and_times_out_with_exit_3(
    deployment: LocalDeployment, sim: UpstreamSimulator, sim_url: str, capsys: Capture
) -> None:
    sim.add_job(EXPORT, "exp-slow", [state("TRANSFERRING", objects=1)], backend="s3")
    key = _track_export(deployment, sim_url, "exp-slow")

    started = time.monotonic()
    code, out, err = _run(capsys, "follow", "exp-slow", "--timeout", "0.3", *FAST)
    assert time.monotonic() - started < 5
    assert code == 3
    assert err == "jobwatch: follow timed out after 0.3s with jobs still running\n"
    first, last = out.splitlines()
    assert f"  {key}  PENDING  " in first and "ETA unknown" in first  # never polled: state mode reads only
    assert last.endswith("  timed out: 1 PENDING")
    assert sim.request_count("exp-slow") == 0


def test_follow_direct_polls_the_upstream_like_check(
    deployment: LocalDeployment,
    sim: UpstreamSimulator,
    sim_url: str,
    capsys: Capture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    steps = [state("TRANSFERRING", objects=3), state("SUCCESS", objects=12)]
    sim.add_job(EXPORT, "exp-direct", steps, backend="s3", api_key="wv-key")
    monkeypatch.setenv("WV_KEY", "wv-key")
    argv = ["--direct", EXPORT, "--endpoint", sim_url, "--backend", "s3", "--job-id", "exp-direct"]

    code, out, err = _run(capsys, "follow", *argv, "--api-key-env", "WV_KEY", *FAST)
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert "  exp-direct  RUNNING  " in lines[0] and "objects 3" in lines[0]
    assert "  exp-direct  SUCCEEDED  100% " in lines[1] and "objects 12" in lines[1]
    assert deployment.jobs() == []  # nothing tracked

    code, out, err = _run(capsys, "follow", *argv, "--api-key-env", "NO_SUCH_VAR")
    assert (code, out, err) == (2, "", "jobwatch: environment variable NO_SUCH_VAR is empty or unset\n")
    code, out, err = _run(capsys, "follow", "--direct", EXPORT, "--endpoint", sim_url)
    assert code == 2 and "needs --endpoint and --job-id" in err


# -- references --------------------------------------------------------------------------------------------


def test_an_ambiguous_or_unknown_reference_exits_2_with_one_line(
    deployment: LocalDeployment, sim: UpstreamSimulator, sim_url: str, capsys: Capture
) -> None:
    keys = sorted(_track_export(deployment, sim_url, job_id) for job_id in ("exp-a", "exp-b"))

    code, out, err = _run(capsys, "follow", f"{EXPORT}.", *FAST)
    assert (code, out) == (2, "")
    assert (
        err == f"jobwatch: '{EXPORT}.' matches 2 tracked jobs: {keys[0]}, {keys[1]}; give more of the key\n"
    )

    for command in ("follow", "show", "untrack", "test"):
        code, out, err = _run(capsys, command, "exp-nobody")
        assert (code, out) == (2, ""), command
        assert err == (
            "jobwatch: no tracked job matches 'exp-nobody' (give a job id, a key prefix or the full key)\n"
        )
        code, out, err = _run(capsys, command, f"{EXPORT}.")
        assert (code, out) == (2, "") and "matches 2 tracked jobs" in err


def test_show_test_and_untrack_accept_a_job_id_or_a_key_prefix(
    deployment: LocalDeployment, sim_url: str, capsys: Capture
) -> None:
    key = _track_export(deployment, sim_url, "exp-short")
    code, out, err = _run(capsys, "show", "exp-short")
    assert (code, err) == (0, "") and out.splitlines()[0] == f"key:       {key}"
    code, out, err = _run(capsys, "show", key[: len(EXPORT) + 4], "--json")
    assert code == 0 and f'"key": "{key}"' in out
    code, out, err = _run(capsys, "test", "exp-short")
    assert (code, err) == (0, "") and out.startswith("test notification published: ")
    code, out, err = _run(capsys, "untrack", key[: len(EXPORT) + 4])
    assert (code, out, err) == (0, f"untracked {key}\n", "")
    assert deployment.jobs() == []


# -- terminal mode -----------------------------------------------------------------------------------------


def _run_on_a_terminal(argv: list[str], timeout_s: float = 60.0) -> tuple[int, str]:
    """Run the console script with a pseudo-terminal as stdout; (exit code, everything it drew)."""
    script = Path(sys.executable).parent / "jobwatch"
    master, slave = pty.openpty()
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "160", "LINES": "40"}
    env.pop("NO_COLOR", None)
    process = subprocess.Popen(
        [str(script), *argv], stdin=slave, stdout=slave, stderr=subprocess.PIPE, env=env
    )
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # the child closed its side
                    break
                if not data:
                    break
                chunks.append(data)
            elif process.poll() is not None:
                break
        code = process.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        os.close(master)
        if process.poll() is None:
            process.kill()
        assert process.stderr is not None
        process.stderr.close()
    return code, b"".join(chunks).decode("utf-8", "replace")


def test_follow_on_a_terminal_draws_a_live_table_and_exits_with_the_outcome(
    deployment: LocalDeployment, sim: UpstreamSimulator, sim_url: str
) -> None:
    steps = [state(ready=0.5, rows=500, total_rows=1000).times(2), state(ready=1.0)]
    sim.add_job(ZILLIZ, "imp-tty", steps, cluster_id=CLUSTER)
    key = _track_zilliz(deployment, sim_url, "imp-tty")

    code, screen = _run_on_a_terminal(["follow", "imp-tty", "--poll", "--interval", "0.2", "--timeout", "30"])
    assert code == 0, screen
    assert "\x1b[" in screen  # drawn with escape sequences: rich Live, not plain lines
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen)
    assert "JOB" in plain and "PHASE" in plain and "ETA" in plain
    assert key in plain and "RUNNING" in plain and "50%" in plain
    assert "SUCCEEDED" in plain and "100%" in plain and "finished: 1 SUCCEEDED" in plain

    sim.add_job(
        ZILLIZ, "imp-tty-bad", [state(ready=0.2), state("ImportFailed", error="bad file")], cluster_id=CLUSTER
    )
    _track_zilliz(deployment, sim_url, "imp-tty-bad")
    code, screen = _run_on_a_terminal(
        ["follow", "imp-tty-bad", "--poll", "--interval", "0.1", "--timeout", "30"]
    )
    assert code == 1, screen
    assert "FAILED" in screen


def test_list_on_a_terminal_is_a_rich_table_and_through_a_pipe_plain_columns(
    deployment: LocalDeployment, sim: UpstreamSimulator, sim_url: str, capsys: Capture
) -> None:
    sim.add_job(PINECONE, "imp-list", [state("InProgress", progress=25, rows=5)])
    key = deployment.track(source=PINECONE, endpoint=sim_url, job_id="imp-list", labels={"team": "a"}).key
    deployment.poll()

    code, out, err = _run(capsys, "list")
    assert (code, err) == (0, "")
    header, row = out.splitlines()
    assert header.split() == ["KEY", "JOB", "ID", "PHASE", "PROGRESS", "ETA", "UPDATED", "LABELS"]
    assert row.split()[:5] == [key, "imp-list", "RUNNING", "25%", "[#####---------------]"]
    assert row.endswith("team=a") and ("  just now  " in row or " s ago  " in row)  # relative time

    code, screen = _run_on_a_terminal(["list"])
    assert code == 0, screen
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen)
    assert "\x1b[1m" in screen  # a bold header: rich drew it
    assert key in plain and "25% [#####" in plain and "just now" in plain and "team=a" in plain


def test_run_prints_each_transition_and_a_timestamped_summary_per_cycle(
    deployment: LocalDeployment, sim: UpstreamSimulator, sim_url: str, capsys: Capture
) -> None:
    sim.add_job(EXPORT, "exp-run", [state("STARTED"), state("SUCCESS", objects=2)], backend="s3")
    key = _track_export(deployment, sim_url, "exp-run")

    code, out, _ = _run(capsys, "run", "--cycles", "2", "--interval", "0")
    assert code == 0
    lines = out.splitlines()
    assert all(STAMP.match(line) for line in lines), out
    words = [line.split()[1:3] for line in lines]
    assert words == [["STARTED", key], ["cycle", "1:"], ["SUCCEEDED", key], ["cycle", "2:"]]
    assert "poll jobs=1, polled=1, transitions=1, published=1" in lines[1]
    assert "deliver delivered=1" in lines[1]
