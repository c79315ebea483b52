"""Each Lambda function's cold start: a missing required variable stops the import, naming it.

`functions/<name>/app.py` builds its settings and adapters at import (the Lambda init phase). Each
one is imported here in a fresh interpreter, as the Lambda runtime would import it: with the function
directory on `sys.path` and the environment of a local stack (`deployment.env`, the variables that
template.yaml gives every function), once as it is and once without each variable the function
cannot work without. Without one, the import must fail (non-zero exit) and say which variable.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from jobwatch_devkit.harness import REPO_ROOT, LocalDeployment

pytestmark = pytest.mark.integration

FUNCTIONS_DIR = REPO_ROOT / "functions"

REQUIRED = {
    "poller": ("JOBWATCH_TABLE", "JOBWATCH_TOPIC_ARN"),
    "poll_worker": ("JOBWATCH_TABLE", "JOBWATCH_TOPIC_ARN"),
    "notifier": (
        "JOBWATCH_TABLE",
        "JOBWATCH_NOTIFY_QUEUE_URL",
        "JOBWATCH_NOTIFY_DLQ_URL",
        "JOBWATCH_EMAIL_TOPIC_ARN",
    ),
    "api": ("JOBWATCH_TABLE", "JOBWATCH_TOPIC_ARN"),
    "slack_interactions": ("JOBWATCH_TABLE", "JOBWATCH_SLACK_SIGNING_SECRET"),
}
"""What each function's settings model requires (tests/unit/test_settings_and_secrets.py pins the
models to the same lists)."""

WIRED = {
    "poller": "DEPS",
    "poll_worker": "DEPS",
    "notifier": "NOTIFIER",
    "api": "OPERATIONS",
    "slack_interactions": "INTERACTIONS",
}
"""The module-level object each `app.py` builds at cold start."""

IMPORT_APP = """
import sys
sys.path.insert(0, sys.argv[1])
import app
print(type(getattr(app, sys.argv[2])).__name__)
"""

MISSING = [(name, variable) for name, variables in REQUIRED.items() for variable in variables]


def test_every_function_is_covered() -> None:
    assert sorted(path.parent.name for path in FUNCTIONS_DIR.glob("*/app.py")) == sorted(REQUIRED)


def _stack_env(deployment: LocalDeployment) -> dict[str, str]:
    """This process's environment (AWS test credentials, the moto endpoint) with only the local
    stack's own JOBWATCH_* variables."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("JOBWATCH_")}
    env.update(deployment.env)
    return env


def _import_app(function: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", IMPORT_APP, str(FUNCTIONS_DIR / function), WIRED[function]],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("function", list(REQUIRED))
def test_the_function_starts_with_the_local_stack_environment(
    deployment: LocalDeployment, function: str, tmp_path: Path
) -> None:
    env = _stack_env(deployment)
    assert set(REQUIRED[function]) <= set(env), "the local stack sets every required variable"

    result = _import_app(function, env, tmp_path)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(("function", "variable"), MISSING, ids=[f"{f}-{v}" for f, v in MISSING])
def test_a_missing_required_variable_stops_the_cold_start_naming_it(
    deployment: LocalDeployment, function: str, variable: str, tmp_path: Path
) -> None:
    env = _stack_env(deployment)
    del env[variable]

    result = _import_app(function, env, tmp_path)

    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert variable in output
    assert f"SettingsError: {variable} is not set" in output  # the one line, as the init error logs it
