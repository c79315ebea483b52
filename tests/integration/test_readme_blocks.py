"""The README's local-operation and API examples run as written against `make sandbox`, offline.

Why: README commands rot silently. Blocks marked `<!-- readme-test: NAME -->` (the line before the
fence) are run here verbatim with bash, in one shell as a person would type them in their second
terminal; only the sandbox's fixed ports (9000, 8080) are swapped for free ones, so the test never
collides with a sandbox someone is running.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from jobwatch_devkit.processes import free_port
from jobwatch_devkit.sandbox import DEFAULT_SIMULATOR_PORT
from jobwatch_devkit.sandbox.testing import SandboxRun

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
MARKED_BLOCK = re.compile(
    r"^<!-- readme-test: (?P<name>[\w-]+) -->\n```(?:bash|sh)\n(?P<body>.*?)^```", re.M | re.S
)
README_API_PORT = 8080


def readme_blocks() -> dict[str, str]:
    blocks: dict[str, str] = {}
    for match in MARKED_BLOCK.finditer(README.read_text(encoding="utf-8")):
        assert match["name"] not in blocks, f"two README blocks named {match['name']}"
        blocks[match["name"]] = match["body"]
    return blocks


def with_ports(block: str, sim_port: int, api_port: int) -> str:
    """The README's fixed ports swapped for this run's; each must be there, or the README changed."""
    sim, api = f"127.0.0.1:{DEFAULT_SIMULATOR_PORT}", str(README_API_PORT)
    known = block.count(f"--port {api}") + block.count(f":{api}/")
    assert block.count(api) == known, f"port {api} used in an unexpected way:\n{block}"
    block = block.replace(f"--port {api}", f"--port {api_port}").replace(f":{api}/", f":{api_port}/")
    return block.replace(sim, f"127.0.0.1:{sim_port}")


def shell_env() -> dict[str, str]:
    """The caller's environment without AWS or jobwatch settings: the README's own lines set them."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "JOBWATCH_", "VIRTUAL_ENV"))}


def test_the_sandbox_block_is_make_sandbox_and_make_sandbox_runs_the_module() -> None:
    blocks = readme_blocks()
    commands = [line.split("#")[0].strip() for line in blocks["sandbox"].splitlines()]
    assert [c for c in commands if c] == ["make sandbox"]
    recipe = re.search(r"^sandbox:.*\n\t(?P<cmd>.+)$", (ROOT / "Makefile").read_text(), re.M)
    assert recipe is not None and "-m jobwatch_devkit.sandbox" in recipe["cmd"]


def test_readme_local_operation_and_api_blocks_run_verbatim(tmp_path: Path) -> None:
    venv = Path(sys.prefix)
    if venv == Path(sys.base_prefix) or not (venv / "bin" / "activate").is_file():
        pytest.skip("the README activates .venv: run the tests from the project's virtualenv")
    blocks = readme_blocks()
    assert {"local-operation", "api"} <= set(blocks), f"marked README blocks: {sorted(blocks)}"
    (tmp_path / ".venv").symlink_to(venv)  # `. .venv/bin/activate` as in the repository's root

    with SandboxRun(tmp_path).start(ROOT / "template.yaml") as sandbox:
        sim_port = int(sandbox.env["JOBWATCH_SANDBOX_UPSTREAM"].rsplit(":", 1)[1])
        api_port = free_port()
        script = "\n".join(
            [
                "set -eo pipefail",
                *(with_ports(blocks[name], sim_port, api_port) for name in ("local-operation", "api")),
            ]
        )
        shell = subprocess.Popen(
            ["bash", "-c", script],
            cwd=tmp_path,
            env=shell_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # `api serve &` is in this group: nothing outlives the test
        )
        try:
            out, err = shell.communicate(timeout=240)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(shell.pid, signal.SIGKILL)
            if shell.poll() is None:
                shell.wait(10)
        assert shell.returncode == 0, f"README commands failed:\n--- stdout:\n{out}\n--- stderr:\n{err}"

        assert '"phase": "RUNNING"' in out and '"status": "STARTED"' in out  # check --json
        assert re.search(r"^tracking zilliz-import-v1\.\S+ \(zilliz-import-v1 job-123\)$", out, re.M)
        assert re.search(r"^zilliz-import-v1\.\S+\s+job-123\s", out, re.M), "list shows the tracked job"
        assert re.search(r"^deliver: delivered=[1-9]", out, re.M), out
        assert "job-123 succeeded" in out, "follow exited 0 once the job SUCCEEDED"
        assert '"jobId": "101"' in out or '"jobId":"101"' in out, "POST /jobs answered with the job"
        assert "job-456" in out, "discover tracked the watched cluster's other import"

        # What the person in terminal 1 read: the job's posts, through to its outcome.
        posted = sandbox.wait_for_output("SUCCEEDED · Zilliz Cloud import", timeout=30)
        assert "STARTED · Zilliz Cloud import" in posted and "Job id: job-123" in posted
        assert sandbox.interrupt() == 0
