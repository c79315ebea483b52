"""The `jobwatch` command against moto server, the upstream simulator and the Slack sink.

Commands run in process through `jobwatch_tools.cli.main` (the console script's entry point) with capsys;
one test runs the installed console script itself. stdout must carry only the command's result
(`--json` output parses as exactly one JSON document), stderr one line naming the cause on failure.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from jobwatch_tools.cli import main
from jobwatch_tools.local import clear_caches, list_jobs

from jobwatch.domain.model import Phase, Snapshot
from jobwatch_devkit.harness import TEMPLATE, LocalDeployment
from jobwatch_devkit.simulator import (
    Step,
    UpstreamSimulator,
    fault_api_error,
    fault_hang,
    fault_http,
    fault_malformed,
    state,
)
from jobwatch_devkit.slack_sink import SlackSink

pytestmark = pytest.mark.integration

EXPORT = "weaviate-export"
ZILLIZ = "zilliz-import-v1"
CLUSTER = "in01-cli0001"

Capture = pytest.CaptureFixture[str]


def _tid(job_key: str, version: int) -> str:
    """The id of a transition the job's current life recorded at `version` (docs/decisions.md, D28)."""
    from jobwatch_tools.local import list_jobs

    from jobwatch.domain.transitions import transition_id

    (job,) = [job for job in list_jobs() if job.key == job_key]
    return transition_id(job_key, version, life=job.life)


def _run(capsys: Capture, *argv: str) -> tuple[int, str, str]:
    """`jobwatch ARGV...` in process: (exit code, stdout, stderr)."""
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _export_args(endpoint: str, job_id: str) -> list[str]:
    return [EXPORT, "--endpoint", endpoint, "--backend", "s3", "--job-id", job_id]


def _zilliz_args(endpoint: str, job_id: str) -> list[str]:
    return [ZILLIZ, "--endpoint", endpoint, "--cluster-id", CLUSTER, "--job-id", job_id]


def _list_json(capsys: Capture) -> list[dict[str, Any]]:
    code, out, err = _run(capsys, "list", "--json")
    assert (code, err) == (0, "")
    jobs = json.loads(out)
    assert isinstance(jobs, list)
    return jobs


def _one_json_object(out: str) -> dict[str, Any]:
    lines = out.splitlines()
    assert len(lines) == 1, out
    data = json.loads(lines[0])
    assert isinstance(data, dict)
    return data


# -- check -------------------------------------------------------------------------------------------------


def test_check_prints_the_snapshot_of_both_core_sources(
    deployment: LocalDeployment, sim: UpstreamSimulator, sim_url: str, capsys: Capture
) -> None:
    sim.add_job(EXPORT, "exp-check", [state("TRANSFERRING", objects=1234)], backend="s3")
    sim.add_job(ZILLIZ, "job-check", [state(ready=0.4)], cluster_id=CLUSTER)

    code, out, err = _run(capsys, "check", *_export_args(sim_url, "exp-check"))
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[:3] == ["phase:     RUNNING", "status:    TRANSFERRING", "progress:  0%"]
    assert any(line.startswith("started:   ") for line in lines)
    # details as labelled lines under `details:`, not a JSON blob
    details = lines[lines.index("details:") + 1 :]
    assert details and all(line.startswith("  ") for line in details)
    assert ["objects", "exported:", "1,234"] in [line.split() for line in details]
    assert ["collections:", "Article"] in [line.split() for line in details]

    code, out, err = _run(capsys, "check", *_export_args(sim_url, "exp-check"), "--json")
    assert (code, err) == (0, "")
    data = json.loads(out)
    assert set(data) == {
        "phase",
        "status",
        "progress",
        "error",
        "startedAt",
        "completedAt",
        "details",
        "statusKnown",
    }
    snapshot = Snapshot.model_validate(data)
    assert (snapshot.phase, snapshot.status, snapshot.status_known) == (Phase.RUNNING, "TRANSFERRING", True)
    assert (snapshot.error, snapshot.completed_at) == (None, None)
    assert snapshot.details["objectsExported"] == 1234
    assert snapshot.details["collections"] == ["Article"]

    code, out, err = _run(capsys, "check", *_zilliz_args(sim_url, "job-check"), "--json")
    assert (code, err) == (0, "")
    snapshot = Snapshot.model_validate(json.loads(out))
    assert (snapshot.phase, snapshot.status, snapshot.progress) == (Phase.RUNNING, "ImportRunning", 40.0)
    assert snapshot.details["collectionName"] == "medium_articles"

    code, out, err = _run(capsys, "check", *_zilliz_args(sim_url, "job-check"))
    assert (code, err) == (0, "")
    assert out.splitlines()[:3] == ["phase:     RUNNING", "status:    ImportRunning", "progress:  40%"]

    # `check` polls once and tracks nothing.
    assert list_jobs() == []
    assert (sim.request_count("exp-check"), sim.request_count("job-check")) == (2, 2)


def test_check_sends_the_api_key_from_the_named_environment_variable(
    deployment: LocalDeployment,
    sim: UpstreamSimulator,
    sim_url: str,
    capsys: Capture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sim.add_job(EXPORT, "exp-keyed", [state("SUCCESS", objects=10)], backend="s3", api_key="wv-cli-key")
    monkeypatch.setenv("WEAVIATE_API_KEY", "wv-cli-key")
    code, out, err = _run(
        capsys, "check", *_export_args(sim_url, "exp-keyed"), "--api-key-env", "WEAVIATE_API_KEY"
    )
    assert (code, err) == (0, "")
    assert out.splitlines()[0] == "phase:     SUCCEEDED"

    monkeypatch.setenv("WEAVIATE_API_KEY", "wv-wrong-key")
    code, out, err = _run(
        capsys, "check", *_export_args(sim_url, "exp-keyed"), "--api-key-env", "WEAVIATE_API_KEY"
    )
    assert (code, out) == (2, "")
    assert err.splitlines() == ["jobwatch: poll failed: AUTH HTTP 401: unauthorized: invalid api key"]
    assert "wv-wrong-key" not in err

    code, out, err = _run(
        capsys, "check", *_export_args(sim_url, "exp-keyed"), "--api-key-env", "NO_SUCH_VAR"
    )
    assert (code, out) == (2, "")
    assert err.splitlines() == ["jobwatch: environment variable NO_SUCH_VAR is empty or unset"]


CHECK_FAILURES: dict[str, tuple[str, Step, str]] = {
    "http-status": (
        EXPORT,
        fault_http(502),
        "jobwatch: poll failed: HTTP_STATUS HTTP 502: simulated 502 Bad Gateway",
    ),
    "api-code-in-http-200": (
        ZILLIZ,
        fault_api_error(80010, "Cluster in01-cli0001 is not running."),
        "jobwatch: poll failed: API_ERROR HTTP 200 code 80010: Cluster in01-cli0001 is not running.",
    ),
    "timeout": (EXPORT, fault_hang(2.5), "jobwatch: poll failed: TIMEOUT: no answer in time (ReadTimeout)"),
    "invalid-body": (
        ZILLIZ,
        fault_malformed(),
        "jobwatch: poll failed: INVALID_BODY HTTP 200: body is not JSON (application/json): ",
    ),
}


@pytest.mark.parametrize("case", list(CHECK_FAILURES.values()), ids=list(CHECK_FAILURES))
def test_check_poll_error_exits_2_with_one_line_naming_the_cause(
    deployment: LocalDeployment,
    sim: UpstreamSimulator,
    sim_url: str,
    capsys: Capture,
    case: tuple[str, Step, str],
) -> None:
    source, fault, expected = case
    sim.add_job(source, "job-broken", [fault])
    args = _export_args(sim_url, "job-broken") if source == EXPORT else _zilliz_args(sim_url, "job-broken")
    code, out, err = _run(capsys, "check", *args)
    assert (code, out) == (2, "")
    lines = err.splitlines()
    assert len(lines) == 1, err
    if expected.endswith(": "):
        assert lines[0].startswith(expected) and len(lines[0]) > len(expected)
    else:
        assert lines[0] == expected


def test_check_of_an_unknown_job_names_the_upstream_answer(
    deployment: LocalDeployment, sim_url: str, capsys: Capture
) -> None:
    code, out, err = _run(capsys, "check", *_export_args(sim_url, "exp-nobody-started"))
    assert (code, out) == (2, "")
    assert err.splitlines() == ["jobwatch: poll failed: NOT_FOUND HTTP 404: export not found"]


# -- track / list / poll / deliver ---------------------------------------------------------------------------


def test_track_twice_keeps_one_item_and_list_shows_its_phase_after_poll(
    deployment: LocalDeployment, sim: UpstreamSimulator, sim_url: str, sink: SlackSink, capsys: Capture
) -> None:
    sim.add_job(EXPORT, "exp-cli", [state("TRANSFERRING", objects=5)], backend="s3")
    args = [*_export_args(sim_url, "exp-cli"), "--label", "team=search", "--label", "env=prod"]

    code, out, err = _run(capsys, "track", *args)
    assert (code, err) == (0, "")
    (key,) = [job.key for job in list_jobs()]
    assert out == f"tracking {key} (weaviate-export exp-cli)\n"
    code, out, err = _run(capsys, "track", *args)
    assert (code, err) == (0, "")
    assert out == f"already tracked {key} (weaviate-export exp-cli)\n"

    (listed,) = _list_json(capsys)
    assert (listed["key"], listed["snapshot"], listed["version"]) == (key, None, 0)
    assert listed["spec"]["jobId"] == "exp-cli" and listed["spec"]["labels"] == {
        "env": "prod",
        "team": "search",
    }
    code, out, err = _run(capsys, "list")
    assert (code, err) == (0, "")
    header, row = out.splitlines()
    assert header.split() == ["KEY", "JOB", "ID", "PHASE", "PROGRESS", "ETA", "UPDATED", "LABELS"]
    assert row.startswith(key) and "(not polled yet)" in row

    code, out, err = _run(capsys, "poll", "--json")
    assert (code, err) == (0, "")
    report = _one_json_object(out)
    assert {k: report[k] for k in ("jobs", "polled", "transitions", "published", "poll_errors")} == {
        "jobs": 1,
        "polled": 1,
        "transitions": 1,
        "published": 1,
        "poll_errors": 0,
    }
    assert report["events"] == [{"transitionId": _tid(key, 1), "jobKey": key, "event": "STARTED"}]

    (listed,) = _list_json(capsys)
    assert (listed["key"], listed["version"]) == (key, 1)
    assert (listed["snapshot"]["phase"], listed["snapshot"]["status"]) == ("RUNNING", "TRANSFERRING")
    code, out, err = _run(capsys, "list")
    row = out.splitlines()[1]
    assert row.split()[:4] == [key, "exp-cli", "RUNNING", "0%"] and row.endswith("env=prod,team=search")

    code, out, err = _run(capsys, "deliver", "--json")
    assert (code, err) == (0, "")
    assert _one_json_object(out) == {
        "deadLettered": 0,
        "deferred": 0,
        "delivered": 1,
        "duplicates": 0,
        "retried": 0,
    }
    assert len(sink.messages()) == 1

    code, out, err = _run(capsys, "poll", "--json")
    assert (code, err) == (0, "")
    report = _one_json_object(out)
    assert (report["polled"], report["unchanged"], report["transitions"], report["events"]) == (1, 1, 0, [])
    code, out, err = _run(capsys, "deliver", "--json")
    assert _one_json_object(out) == {
        "deadLettered": 0,
        "deferred": 0,
        "delivered": 0,
        "duplicates": 0,
        "retried": 0,
    }


def test_poll_text_output_names_each_event_and_each_poll_error(
    deployment: LocalDeployment, sim: UpstreamSimulator, sim_url: str, capsys: Capture
) -> None:
    sim.add_job(EXPORT, "exp-ok", [state("STARTED")], backend="s3")
    sim.add_job(EXPORT, "exp-500", [fault_http(500)], backend="s3")
    for job_id in ("exp-ok", "exp-500"):
        assert _run(capsys, "track", *_export_args(sim_url, job_id))[0] == 0
    ok_key = next(job.key for job in list_jobs() if job.spec.job_id == "exp-ok")

    code, out, err = _run(capsys, "poll")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("poll: ") and "transitions=1" in lines[0] and "poll_errors=1" in lines[0]
    assert lines[1:] == [
        f"  STARTED    {ok_key}  ({_tid(ok_key, 1)})",
        "  poll error exp-500: HTTP_STATUS HTTP 500: simulated 500 Internal Server Error",
    ]
    # Logs go to stderr only (WARNING and up by default), as JSON.
    records = [json.loads(line) for line in err.splitlines()]
    assert [(r["level"], r["message"], r["jobId"]) for r in records] == [
        ("WARNING", "poll failed; job phase unchanged", "exp-500")
    ]


REFUSED: dict[str, tuple[list[str], str]] = {
    "missing-backend": (
        [EXPORT, "--endpoint", "{sim}", "--job-id", "exp-x"],
        "jobwatch: registration refused, nothing written: source 'weaviate-export' needs --backend (backend)",
    ),
    "missing-cluster-id": (
        [ZILLIZ, "--endpoint", "{sim}", "--job-id", "job-x"],
        "jobwatch: registration refused, nothing written: source 'zilliz-import-v1' needs --cluster-id "
        "(cluster_id)",
    ),
    "blank-job-id": (
        [EXPORT, "--endpoint", "{sim}", "--backend", "s3", "--job-id", "  "],
        "jobwatch: registration refused, nothing written: missing or oversized field 'jobId' "
        "(1..512 characters)",
    ),
    "unknown-source": (
        ["weaviate-exprt", "--endpoint", "{sim}", "--backend", "s3", "--job-id", "exp-x"],
        "jobwatch: registration refused, nothing written: unknown source 'weaviate-exprt'; valid sources: "
        "milvus-import, pinecone-import, weaviate-backup, weaviate-export, weaviate-restore, "
        "zilliz-import-v1, zilliz-import-v2",
    ),
    "plain-http-to-a-private-address": (
        [EXPORT, "--endpoint", "http://10.1.2.3", "--backend", "s3", "--job-id", "exp-x"],
        "jobwatch: registration refused, nothing written: endpoint 'http://10.1.2.3' refused: plain http is "
        "only allowed for loopback addresses",
    ),
    "not-a-url": (
        [EXPORT, "--endpoint", "weaviate.internal:8080", "--backend", "s3", "--job-id", "exp-x"],
        "jobwatch: registration refused, nothing written: endpoint 'weaviate.internal:8080' must be an "
        "absolute https:// URL",
    ),
    "credentials-in-the-url": (
        [EXPORT, "--endpoint", "https://admin:pw@weaviate.example.com", "--backend", "s3", "--job-id", "x"],
        "jobwatch: registration refused, nothing written: endpoint must not embed credentials; store the "
        "API key in Secrets Manager",
    ),
    "label-without-value": (
        [EXPORT, "--endpoint", "{sim}", "--backend", "s3", "--job-id", "exp-x", "--label", "team"],
        "jobwatch: registration refused, nothing written: label 'team' must look like key=value",
    ),
}


def test_upgrade_lists_jobs_tracked_before_the_creation_index_again(
    deployment: LocalDeployment, sim_url: str, capsys: Capture
) -> None:
    from jobwatch.adapters import aws

    for job_id in ("exp-old", "exp-new"):
        assert _run(capsys, "track", *_export_args(sim_url, job_id))[0] == 0
    old = next(job for job in list_jobs() if job.spec.job_id == "exp-old")
    aws.dynamodb().update_item(  # as an older jobwatch wrote it: no createdKey
        TableName=deployment.settings.table,
        Key={"pk": {"S": f"JOB#{old.key}"}, "sk": {"S": "JOB"}},
        UpdateExpression="REMOVE createdKey",
    )
    assert [job["spec"]["jobId"] for job in _list_json(capsys)] == ["exp-new"]  # GET /jobs's index
    assert _run(capsys, "upgrade") == (0, "upgrade: 1 job(s) added to the listing index\n", "")
    assert [job["spec"]["jobId"] for job in _list_json(capsys)] == ["exp-old", "exp-new"]
    assert _run(capsys, "upgrade", "--json") == (0, '{"jobsIndexed": 0, "jobsMovedShard": 0}\n', "")


def test_snooze_and_mute_one_job_or_every_job_with_a_label(
    deployment: LocalDeployment, sim: UpstreamSimulator, sim_url: str, capsys: Capture
) -> None:
    for job_id, team in (("exp-a", "search"), ("exp-b", "search"), ("exp-c", "ml")):
        sim.add_job(EXPORT, job_id, [state("STARTED")], backend="s3")
        assert _run(capsys, "track", *_export_args(sim_url, job_id), "--label", f"team={team}")[0] == 0
    code, out, err = _run(capsys, "snooze", "--label", "team=search", "--for", "4h")
    assert (code, err) == (0, "") and len(out.splitlines()) == 2
    assert all(
        line.startswith("snoozed ") and "only FAILED, LOST, AUTH_FAILED until" in line
        for line in out.splitlines()
    )
    code, out, err = _run(capsys, "mute", "exp-c")
    assert (code, err) == (0, "") and out.endswith("(muted: nothing is published)\n")
    code, out, err = _run(capsys, "poll", "--json")
    assert _one_json_object(out)["published"] == 0  # three STARTED, all held back
    code, out, err = _run(capsys, "show", "exp-c")
    assert "quiet:     muted by cli:" in out and "1 suppressed (last: STARTED at " in out
    assert _run(capsys, "unmute", "exp-c")[0] == 0
    assert "muted" not in _run(capsys, "show", "exp-c")[1].split("quiet:", 1)[1]

    assert _run(capsys, "snooze", "exp-a", "--for", "forever")[2].startswith(
        "jobwatch: 'forever' is not a duration"
    )
    assert (
        _run(capsys, "snooze", "--for", "4h")[2]
        == "jobwatch: name one job, or select jobs with --label k=v (not both)\n"
    )
    code, out, err = _run(capsys, "mute", "--label", "team=nobody")
    assert (code, err) == (1, "jobwatch: no tracked job has team=nobody\n")


@pytest.mark.parametrize("case", list(REFUSED.values()), ids=list(REFUSED))
def test_track_refuses_a_bad_registration_and_writes_nothing(
    deployment: LocalDeployment, sim_url: str, capsys: Capture, case: tuple[list[str], str]
) -> None:
    argv, expected = case
    code, out, err = _run(capsys, "track", *(arg.replace("{sim}", sim_url) for arg in argv))
    assert (code, out) == (2, "")
    assert err.splitlines() == [expected]
    assert _list_json(capsys) == []


def test_track_refuses_plain_http_loopback_unless_allowed(
    deployment: LocalDeployment, sim_url: str, capsys: Capture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JOBWATCH_ALLOW_HTTP_LOOPBACK", "false")
    clear_caches()
    code, out, err = _run(capsys, "track", *_export_args("http://127.0.0.1", "exp-x"))
    assert (code, out) == (2, "")
    assert err.splitlines() == [
        "jobwatch: registration refused, nothing written: endpoint 'http://127.0.0.1' refused: plain http "
        "needs JOBWATCH_ALLOW_HTTP_LOOPBACK=true"
    ]
    code, out, err = _run(capsys, "track", *_export_args(sim_url, "exp-x"))
    assert code == 2 and "plain http needs JOBWATCH_ALLOW_HTTP_LOOPBACK=true" in err
    assert _list_json(capsys) == []

    monkeypatch.setenv("JOBWATCH_ALLOW_HTTP_LOOPBACK", "true")
    clear_caches()
    code, out, err = _run(capsys, "track", *_export_args(sim_url, "exp-x"))
    assert (code, err) == (0, "")
    assert len(_list_json(capsys)) == 1


def test_track_without_a_required_flag_is_a_usage_error(deployment: LocalDeployment, capsys: Capture) -> None:
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main(["track", EXPORT, "--endpoint", "https://weaviate.example.com", "--backend", "s3"])
    out, err = capsys.readouterr()
    assert (exit_info.value.code, out) == (2, "")
    assert err.splitlines()[-1] == "jobwatch track: error: the following arguments are required: --job-id"
    assert _list_json(capsys) == []


# -- local-stack -------------------------------------------------------------------------------------------


def test_local_stack_prints_export_lines(
    deployment: LocalDeployment, sink: SlackSink, capsys: Capture
) -> None:
    code, out, err = _run(capsys, "local-stack", "--template", str(TEMPLATE), "--slack-webhook", sink.url)
    assert (code, err) == (0, "")
    exported: dict[str, str] = {}
    for line in out.splitlines():
        words = shlex.split(line)
        assert words[0] == "export" and len(words) == 2, line
        name, _, value = words[1].partition("=")
        exported[name] = value
    assert exported["JOBWATCH_TABLE"] == deployment.env["JOBWATCH_TABLE"] == "jobwatch-JobsTable"
    assert exported["JOBWATCH_TOPIC_ARN"] == deployment.settings.topic_arn
    assert exported["JOBWATCH_TOPIC_ARN"].endswith(":jobwatch-TransitionsTopic")
    assert exported == deployment.env  # idempotent: the same stack the harness created


# -- the installed console script --------------------------------------------------------------------------


def test_installed_console_script_runs_the_cli(
    deployment: LocalDeployment, sim: UpstreamSimulator, sim_url: str
) -> None:
    script = Path(sys.executable).parent / "jobwatch"
    assert script.is_file(), f"console script missing: {script}"
    sim.add_job(EXPORT, "exp-script", [state("SUCCESS", objects=3)], backend="s3")
    env = dict(os.environ)  # the deployment's settings, as a shell that ran `eval $(jobwatch local-stack)`

    done = subprocess.run(
        [str(script), "check", *_export_args(sim_url, "exp-script"), "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stderr) == (0, "")
    snapshot = Snapshot.model_validate_json(done.stdout)
    assert (snapshot.phase, snapshot.status, snapshot.progress) == (Phase.SUCCEEDED, "SUCCESS", 100.0)

    done = subprocess.run(
        [str(script), "check", *_export_args(sim_url, "exp-unknown")],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.splitlines() == ["jobwatch: poll failed: NOT_FOUND HTTP 404: export not found"]
