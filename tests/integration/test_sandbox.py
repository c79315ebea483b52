"""`make sandbox` (`python -m jobwatch_devkit.sandbox`): starts everything, serves every source's sample
jobs, prints Slack posts readably, and stops cleanly on Ctrl-C; scenario files and busy ports."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from jobwatch_devkit.http11 import HOST
from jobwatch_devkit.processes import _devkit_env
from jobwatch_devkit.sandbox import DEFAULT_SCENARIO, SANDBOX_SECRET
from jobwatch_devkit.sandbox.testing import SandboxRun
from jobwatch_devkit.simulator import SOURCES
from jobwatch_devkit.simulator.scenario_file import parse_scenario

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
JOBWATCH = str(Path(sys.executable).parent / "jobwatch")


def jobwatch(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([JOBWATCH, *args], env=env, capture_output=True, text=True, timeout=60, check=False)


def check_args(job: dict[str, object], endpoint: str) -> list[str]:
    args = ["check", str(job["source"]), "--endpoint", endpoint, "--job-id", str(job["jobId"]), "--json"]
    if "backend" in job:
        args += ["--backend", str(job["backend"])]
    if "clusterId" in job:
        args += ["--cluster-id", str(job["clusterId"])]
    if "apiKey" in job:
        args += ["--api-key-env", "JOBWATCH_SANDBOX_API_KEY"]
    return args


def test_sandbox_serves_every_source_prints_posts_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    with SandboxRun(tmp_path).start(TEMPLATE) as sandbox:
        env = {**_devkit_env(), **sandbox.env}
        for name in ("AWS_ENDPOINT_URL", "JOBWATCH_TABLE", "JOBWATCH_NOTIFY_QUEUE_URL", "JOBWATCH_TOPIC_ARN"):
            assert env.get(name), f"{name} missing from {sandbox.env_file}"
        assert env["JOBWATCH_ALLOW_HTTP_LOOPBACK"] == "true"
        upstream = env["JOBWATCH_SANDBOX_UPSTREAM"]
        assert upstream in sandbox.stdout  # the sample endpoints and ids are printed
        assert (tmp_path / ".sandbox" / "scenario.json").is_file()

        jobs = DEFAULT_SCENARIO["jobs"]
        assert {job["source"] for job in jobs} == set(SOURCES)
        for job in jobs:
            assert f"--job-id {job['jobId']}" in sandbox.stdout
            done = jobwatch(env, *check_args(job, upstream))
            assert done.returncode == 0, f"{job['source']} {job['jobId']}: {done.stderr}"
            snapshot = json.loads(done.stdout)
            assert snapshot["phase"] in ("PENDING", "RUNNING") and snapshot["statusKnown"], snapshot

        # The sample secret exists: track accepts it (it refuses a missing one).
        tracked = jobwatch(
            env,
            *("track", "zilliz-import-v1", "--endpoint", upstream, "--cluster-id", "in01-abc"),
            *("--job-id", "job-123", "--secret", SANDBOX_SECRET),
        )
        assert tracked.returncode == 0, tracked.stderr

        payload = {
            "text": "fallback",
            "blocks": [
                {"type": "header", "text": {"type": "plain_text", "text": "✅ SUCCEEDED · export"}},
                {"type": "section", "text": {"type": "mrkdwn", "text": "*Job id*: `nightly` <!here>"}},
            ],
        }
        assert httpx.post(env["JOBWATCH_SANDBOX_SLACK_WEBHOOK"], json=payload, timeout=10).status_code == 200
        out = sandbox.wait_for_output("Job id: nightly @here")
        assert "✅ SUCCEEDED · export" in out and "Slack incoming webhook" in out

        code = sandbox.interrupt()
        assert code == 0, sandbox.stderr
        assert "Traceback" not in sandbox.stderr + sandbox.stdout
        assert sandbox.stdout.rstrip().endswith("sandbox: stopping")
        assert not sandbox.env_file.exists()  # no stale settings left to source
        with socket.socket() as sock:
            assert sock.connect_ex((HOST, int(upstream.rsplit(":", 1)[1]))) != 0, "simulator still up"


def test_sandbox_serves_a_scenario_file(tmp_path: Path) -> None:
    scenario = {
        "jobs": [
            {
                "source": "pinecone-import",
                "jobId": "my-import",
                "steps": [{"status": "InProgress", "progress": 50, "rows": 5}, "Completed"],
            }
        ]
    }
    path = tmp_path / "mine.json"
    path.write_text(json.dumps(scenario), encoding="utf-8")
    with SandboxRun(tmp_path, ["--scenario", str(path)]).start(TEMPLATE) as sandbox:
        env = {**_devkit_env(), **sandbox.env}
        upstream = env["JOBWATCH_SANDBOX_UPSTREAM"]
        args = ("check", "pinecone-import", "--endpoint", upstream, "--job-id", "my-import", "--json")
        first, second = jobwatch(env, *args), jobwatch(env, *args)
        assert json.loads(first.stdout)["progress"] == 50
        assert json.loads(second.stdout)["phase"] == "SUCCEEDED"
        assert sandbox.interrupt() == 0


def test_a_busy_port_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind((HOST, 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run(
            [
                *(sys.executable, "-m", "jobwatch_devkit.sandbox", "--simulator-port", str(port)),
                *("--moto-port", "0", "--slack-port", "0"),
            ],
            cwd=tmp_path,
            env=_devkit_env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"sandbox: port {port} (simulator) is in use: stop what holds it, or pick another with "
        "--simulator-port PORT"
    )


def test_scenario_errors_name_the_job() -> None:
    with pytest.raises(ValueError, match=r"jobs\[0\] \(weaviate-export x\): unknown state field 'bogus'"):
        parse_scenario({"jobs": [{"source": "weaviate-export", "jobId": "x", "steps": [{"bogus": 1}]}]})
    with pytest.raises(ValueError, match="unknown source 'nope'"):
        parse_scenario([{"source": "nope", "jobId": "x", "steps": ["RUNNING"]}])
