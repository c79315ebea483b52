"""The SAM CLI for the template tier and the artifact tests: found once, and `sam build` run once per
session for every test that needs the built artifact (a build takes a minute or two)."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .harness import REPO_ROOT

TEMPLATE = REPO_ROOT / "template.yaml"


@dataclass(frozen=True)
class SamCli:
    executable: str
    env: dict[str, str]
    """The environment to run it in: its own python3.13 first on PATH (what `sam build` needs)."""

    @property
    def python313(self) -> Path:
        return Path(self.executable).parent / "python3.13"


def find_sam_cli() -> SamCli | str:
    """The SAM CLI named by `JOBWATCH_SAM` (the Makefile sets it), or why it cannot be used."""
    executable = os.environ.get("JOBWATCH_SAM")
    if not executable:
        return "JOBWATCH_SAM is not set (path to the `sam` executable; the Makefile sets it)"
    if not os.access(executable, os.X_OK):
        return f"JOBWATCH_SAM={executable} is not executable"
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(executable).parent), env.get("PATH", "")])
    env["SAM_CLI_TELEMETRY"] = "0"
    env.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    return SamCli(executable, env)


def run_sam(cli: SamCli, *args: str, cwd: Path, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    """One SAM CLI command; the caller asserts on its result (output included in the message)."""
    return subprocess.run(
        [cli.executable, *args],
        cwd=cwd,
        env=cli.env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def build_all(cli: SamCli, work: Path) -> Path:
    """`sam build` of the whole template (layer and functions, arm64) into `work/build`.

    cwd is `work`: cached builds keep their dependencies in ./.aws-sam/deps there, never in the repo."""
    build = work / "build"
    result = run_sam(
        cli,
        "build",
        "--template-file",
        str(TEMPLATE),
        "--build-dir",
        str(build),
        "--cache-dir",
        str(work / "cache"),
        "--cached",
        "--parallel",
        cwd=work,
    )
    if result.returncode != 0:
        raise AssertionError(f"sam build failed:\n{result.stdout}\n{result.stderr}")
    return build
