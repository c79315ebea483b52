"""Every function run from its `sam build` artifact, as Lambda runs it, against this session's moto.

`python -m jobwatch_tools.lambda_local` (what `make invoke` runs) starts each handler through the
Lambda runtime interface client (awslambdaric on python3.13, `.venv-lambda`) and a local Runtime API,
with the artifact's own code and layer; only the layer's compiled distributions are this machine's
builds. So the checks here cover what the in-process tests cannot: the built layer holds everything
the handlers import, each `app.py` loads under the real runtime client, and a missing setting stops
the cold start with one line naming the variable.

The artifact is built once per session into a temporary directory (`sam_build_dir`, shared with the
template tier); the runtime
venv comes from the Makefile, and the local-architecture overlay is shared with `make invoke`
(`.aws-sam/local-deps/`, one directory per content). Needs the SAM CLI on python3.13 (JOBWATCH_SAM, as
the template tier), else skipped.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from jobwatch_devkit.harness import REPO_ROOT, LocalDeployment
from jobwatch_devkit.sam import SamCli
from jobwatch_devkit.simulator import UpstreamSimulator, state
from jobwatch_devkit.slack_sink import SlackSink

pytestmark = pytest.mark.integration

EVENTS = REPO_ROOT / "events"
LAMBDA_VENV = REPO_ROOT / ".venv-lambda"
DEPS_DIR = REPO_ROOT / ".aws-sam" / "local-deps"
INVOKE_TIMEOUT_S = 180


@pytest.fixture(scope="session")
def runtime_python(sam: SamCli) -> Path:
    """`.venv-lambda/bin/python` (awslambdaric), made by the Makefile on the SAM CLI's python3.13."""
    python313 = sam.python313
    if not python313.exists():
        pytest.skip("python3.13 is not next to the SAM CLI: the functions' runtime is needed")
    if not (LAMBDA_VENV / ".installed").exists():
        result = subprocess.run(
            ["make", "--no-print-directory", ".venv-lambda/.installed", f"PY313={python313}"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
    return LAMBDA_VENV / "bin" / "python"


@pytest.fixture(scope="session")
def build_dir(sam_build_dir: Path) -> Path:
    """The session's artifact (tests/conftest.py builds it once for this tier and the template tier)."""
    return sam_build_dir


def _invoke(
    build_dir: Path, runtime_python: Path, function: str, event: Path, **env: str
) -> subprocess.CompletedProcess[str]:
    """One invocation from the artifact, against the AWS_ENDPOINT_URL the deployment set (moto)."""
    assert os.environ.get("AWS_ENDPOINT_URL"), "the deployment fixture points AWS_ENDPOINT_URL at moto"
    command = [sys.executable, "-m", "jobwatch_tools.lambda_local", function, str(event)]
    command += ["--build-dir", str(build_dir), "--runtime-python", str(runtime_python)]
    command += ["--deps-dir", str(DEPS_DIR)]
    return subprocess.run(
        command,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=INVOKE_TIMEOUT_S,
        check=False,
    )


def _response(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stderr
    assert "REPORT RequestId:" in result.stderr and "Init Duration:" in result.stderr
    return json.loads(result.stdout)


def test_poller_polls_a_tracked_job_from_its_artifact(
    build_dir: Path, runtime_python: Path, deployment: LocalDeployment, sim: UpstreamSimulator, sim_url: str
) -> None:
    sim.add_job("weaviate-export", "exp-artifact", [state("STARTED")], backend="s3")
    job = deployment.track(source="weaviate-export", endpoint=sim_url, job_id="exp-artifact", backend="s3")

    counts = _response(_invoke(build_dir, runtime_python, "PollerFunction", EVENTS / "poller-schedule.json"))

    assert {name: counts[name] for name in ("jobs", "polled", "transitions", "published", "crashed")} == {
        "jobs": 1,
        "polled": 1,
        "transitions": 1,
        "published": 1,
        "crashed": 0,
    }
    assert [(event.job_key, event.event) for event in deployment.published()] == [(job.key, "STARTED")]
    assert not list(build_dir.rglob("__pycache__")), "bytecode belongs outside the artifact sam deploy zips"


def test_poll_worker_polls_its_shard_from_its_artifact(
    build_dir: Path,
    runtime_python: Path,
    deployment: LocalDeployment,
    sim: UpstreamSimulator,
    sim_url: str,
    tmp_path: Path,
) -> None:
    """The sample order, for the tick that starts now (an order past its cycle polls nothing)."""
    sim.add_job("weaviate-export", "exp-worker", [state("STARTED")], backend="s3")
    job = deployment.track(source="weaviate-export", endpoint=sim_url, job_id="exp-worker", backend="s3")
    event = json.loads((EVENTS / "poll-worker-sqs.json").read_text(encoding="utf-8"))
    order = json.loads(event["Records"][0]["body"])
    event["Records"][0]["body"] = json.dumps({**order, "tick": float(int(time.time()))})
    (tmp_path / "order.json").write_text(json.dumps(event), encoding="utf-8")

    response = _response(_invoke(build_dir, runtime_python, "PollWorkerFunction", tmp_path / "order.json"))

    assert response == {"batchItemFailures": []}
    assert sim.request_count("exp-worker") == 1
    assert [(event.job_key, event.event) for event in deployment.published()] == [(job.key, "STARTED")]


def test_api_lists_jobs_from_its_artifact(
    build_dir: Path, runtime_python: Path, deployment: LocalDeployment
) -> None:
    response = _response(_invoke(build_dir, runtime_python, "ApiFunction", EVENTS / "api-list-jobs.json"))

    assert response["statusCode"] == 200
    assert json.loads(response["body"]) == {"jobs": [], "nextToken": None}


def test_notifier_delivers_an_sns_envelope_from_its_artifact(
    build_dir: Path, runtime_python: Path, deployment: LocalDeployment, sink: SlackSink
) -> None:
    event = EVENTS / "notifier-sqs.json"
    transition = json.loads(json.loads(json.loads(event.read_text())["Records"][0]["body"])["Message"])

    response = _response(_invoke(build_dir, runtime_python, "NotifierFunction", event))

    assert response == {"batchItemFailures": []}
    # The default routes: Slack (the deployment's webhook secret points at the sink) and, for FAILED,
    # the alert e-mail topic.
    (message,) = sink.wait_for_messages(1)
    assert transition["jobId"] in json.dumps(message.to_json())
    assert [email.transition_id for email in deployment.emails()] == [transition["transitionId"]]


def test_a_missing_setting_stops_the_cold_start_with_one_line(
    build_dir: Path, runtime_python: Path, deployment: LocalDeployment
) -> None:
    # As with `sam local invoke`, a declared variable set in the caller's environment wins; empty unsets it.
    event = EVENTS / "poller-schedule.json"
    result = _invoke(build_dir, runtime_python, "PollerFunction", event, JOBWATCH_TOPIC_ARN="")

    assert result.returncode == 1
    assert result.stdout == ""
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("ERROR SettingsError: JOBWATCH_TOPIC_ARN is not set: "), result.stderr


def test_slack_interactions_refuses_the_stale_sample_from_its_artifact(
    build_dir: Path, runtime_python: Path, deployment: LocalDeployment
) -> None:
    """The sample's signature is from 2026-08-21 (events/slack-interaction-snooze.md): the built
    function reads its secret, finds the request stale and refuses it with a 401 naming why."""
    result = _invoke(
        build_dir, runtime_python, "SlackInteractionsFunction", EVENTS / "slack-interaction-snooze.json"
    )
    response = _response(result)
    assert response["statusCode"] == 401
    assert json.loads(response["body"]) == {
        "ok": False,
        "message": "request timestamp is more than 300 s from now",
    }
