"""Every operator mistake ends in one clear line and a non-zero exit, never a traceback.

The `jobwatch` command runs as a user runs it: a subprocess with the environment under test.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from jobwatch_devkit.harness import LocalDeployment

pytestmark = pytest.mark.integration

CLI = [sys.executable, "-m", "jobwatch_tools.cli"]


def _jobwatch(env: dict[str, str], *argv: str) -> tuple[int, str, str]:
    base = {
        "PATH": os.environ["PATH"],
        "HOME": str(Path.home()),
        "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
    }
    result = subprocess.run(
        [*CLI, *argv],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=Path.home(),
    )
    return result.returncode, result.stdout, result.stderr


def _one_clear_line(code: int, err: str, *fragments: str) -> None:
    assert code != 0
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("jobwatch: ")
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


AWS = {"AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
STACK = {"JOBWATCH_TABLE": "jobwatch-JobsTable", "JOBWATCH_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:t"}


def test_no_settings_names_the_variable_and_the_fix() -> None:
    code, _, err = _jobwatch(AWS, "list")
    _one_clear_line(code, err, "JOBWATCH_TABLE is not set", "jobwatch local-stack")


def test_no_region() -> None:
    env = {k: v for k, v in AWS.items() if k != "AWS_DEFAULT_REGION"}
    code, _, err = _jobwatch({**env, **STACK}, "list")
    _one_clear_line(code, err, "no AWS region", "AWS_DEFAULT_REGION")


def test_no_credentials() -> None:
    code, _, err = _jobwatch(
        {"AWS_DEFAULT_REGION": "us-east-1", **STACK, "AWS_EC2_METADATA_DISABLED": "true"}, "list"
    )
    _one_clear_line(code, err, "no AWS credentials")


def test_nothing_at_the_endpoint_url() -> None:
    env = {**AWS, **STACK, "AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_MAX_ATTEMPTS": "1"}
    code, _, err = _jobwatch(env, "list")
    _one_clear_line(code, err, "nothing answers at http://127.0.0.1:9")


def test_a_missing_table_suggests_the_local_stack(deployment: LocalDeployment) -> None:
    env = {
        **AWS,
        **STACK,
        "AWS_ENDPOINT_URL": os.environ["AWS_ENDPOINT_URL"],
        "JOBWATCH_TABLE": "no-such-table",
    }
    code, _, err = _jobwatch(env, "list")
    _one_clear_line(code, err, "'no-such-table' does not exist", "jobwatch local-stack")


def test_a_missing_queue_is_named(deployment: LocalDeployment) -> None:
    env = {**os.environ, **deployment.env}
    env["JOBWATCH_NOTIFY_QUEUE_URL"] = env["JOBWATCH_NOTIFY_QUEUE_URL"] + "-gone"
    code, _, err = _jobwatch({k: v for k, v in env.items() if k.startswith(("AWS_", "JOBWATCH_"))}, "deliver")
    _one_clear_line(code, err, "queue", "does not exist")


def test_a_bad_registration_is_one_line_and_exit_2(deployment: LocalDeployment) -> None:
    env = {k: v for k, v in {**os.environ, **deployment.env}.items() if k.startswith(("AWS_", "JOBWATCH_"))}
    code, _, err = _jobwatch(
        env, "track", "weaviate-export", "--endpoint", "http://10.0.0.1", "--job-id", "x", "--backend", "s3"
    )
    assert code == 2
    _one_clear_line(code, err, "refused")
