"""`python -m jobwatch_devkit.sandbox` (`make sandbox`): moto, the simulator and the Slack sink, until Ctrl-C.

Why a process of its own: a person trying jobwatch wants one terminal that holds every stand-in
(AWS, the vector databases, Slack) and shows what Slack would show, and another where the README's
`jobwatch` commands work as written. Fixed default ports keep those commands verbatim; the settings
go to an env file (`. .sandbox/env`) so the second terminal needs no copy-paste.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import signal
import socket
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from ..http11 import HOST
from ..processes import ServerProcess, free_port, moto_process, simulator_process, slack_sink_process
from ..simulator.scenario_file import ScenarioJob, parse_scenario, read_scenario_document
from ..simulator.script import Step
from .samples import DEFAULT_SCENARIO, SANDBOX_API_KEY

DEFAULT_MOTO_PORT = 5000
DEFAULT_SIMULATOR_PORT = 9000
DEFAULT_SLACK_PORT = 9100
DEFAULT_DIR = Path(".sandbox")
LOCAL_SETTINGS = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "JOBWATCH_ALLOW_HTTP_LOOPBACK": "true",
    # Every tracked job polled every cycle: the sandbox's jobs move one step per poll, and adaptive
    # polling would space them out by minutes.
    "JOBWATCH_ADAPTIVE_POLLING": "false",
}
"""What the second terminal needs besides the stack's own settings (moto accepts any credentials)."""


class SandboxError(Exception):
    """A start-up problem worth one line (port taken, bad scenario): no traceback."""


@dataclass(frozen=True)
class Options:
    moto_port: int
    simulator_port: int
    slack_port: int
    env_file: Path
    scenario: Path | None
    template: Path


def parse_args(argv: Sequence[str] | None) -> Options | None:
    parser = argparse.ArgumentParser(
        prog="python -m jobwatch_devkit.sandbox",
        description="moto server, the upstream simulator with sample jobs of every source, and the Slack "
        "sink, on 127.0.0.1 until Ctrl-C (docs/simulator.md)",
    )
    parser.add_argument("--moto-port", type=int, default=DEFAULT_MOTO_PORT, help="0: any free port")
    parser.add_argument("--simulator-port", type=int, default=DEFAULT_SIMULATOR_PORT, help="0: any free port")
    parser.add_argument("--slack-port", type=int, default=DEFAULT_SLACK_PORT, help="0: any free port")
    parser.add_argument(
        "--env-file", type=Path, default=DEFAULT_DIR / "env", help="where the export lines go (.sandbox/env)"
    )
    parser.add_argument(
        "--scenario", type=Path, help="jobs to serve instead of the samples (JSON or YAML, docs/simulator.md)"
    )
    parser.add_argument("--template", type=Path, default=Path("template.yaml"))
    parser.add_argument(
        "--print-scenario", action="store_true", help="print the built-in scenario (JSON) and exit"
    )
    args = parser.parse_args(argv)
    if args.print_scenario:
        print(json.dumps(DEFAULT_SCENARIO, indent=2))
        return None
    return Options(
        moto_port=args.moto_port,
        simulator_port=args.simulator_port,
        slack_port=args.slack_port,
        env_file=args.env_file,
        scenario=args.scenario,
        template=args.template,
    )


def check_ports(ports: dict[str, tuple[int, str]]) -> None:
    """Refuse early, in one line, when a fixed port is taken (moto would only say so in its log)."""
    for what, (port, flag) in ports.items():
        if port == 0:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((HOST, port))
            except OSError:
                raise SandboxError(
                    f"port {port} ({what}) is in use: stop what holds it, or pick another with {flag} PORT"
                ) from None


def load(options: Options) -> tuple[dict[str, Any], list[ScenarioJob], Path]:
    """The scenario document, its jobs, and the file the simulator reads (the samples are written out)."""
    if options.scenario is None:
        document: Any = DEFAULT_SCENARIO
        path = options.env_file.parent / "scenario.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(DEFAULT_SCENARIO, indent=2) + "\n", encoding="utf-8")
    else:
        path = options.scenario
        try:
            document = read_scenario_document(path)
        except (OSError, ValueError) as exc:
            raise SandboxError(f"scenario {path}: {exc}") from None
    try:
        jobs = parse_scenario(document)
    except ValueError as exc:
        raise SandboxError(f"scenario {path}: {exc}") from None
    secrets = document.get("secrets", {}) if isinstance(document, dict) else {}
    if not isinstance(secrets, dict):
        raise SandboxError(f'scenario {path}: "secrets" must map secret names to values')
    return {str(k): str(v) for k, v in secrets.items()}, jobs, path


Show = Callable[[str], None]


def printer() -> Show:
    """Prints whole blocks under a lock: the sink's posts arrive on another thread."""
    lock = threading.Lock()

    def show(text: str) -> None:
        with lock:
            print(text, flush=True)

    return show


def step_label(step: Step) -> str:
    """A step in a few characters: its status word, else what a status-less source shows."""
    if step.fault is not None:
        return f"fault {step.fault.kind.value}"
    state = step.state
    if state is None:
        return "hold"
    if state.error is not None and state.status is None:
        return "error"
    if state.status is not None:
        return state.status
    if state.ready is not None:
        return f"ready {state.ready:g}"
    return "running"


def track_command(job: ScenarioJob, endpoint: str, secrets: dict[str, str]) -> str:
    """The `jobwatch track` line for a sample job (with the secret holding its key, if it needs one)."""
    parts = ["jobwatch", "track", job.source, "--endpoint", endpoint]
    if job.backend is not None:
        parts += ["--backend", job.backend]
    if job.cluster_id is not None:
        parts += ["--cluster-id", job.cluster_id]
    parts += ["--job-id", job.job_id]
    if job.api_key is not None:
        secret = next((name for name, value in secrets.items() if value == job.api_key), None)
        parts += ["--secret", secret or "SECRET-HOLDING-THE-KEY"]
    return " ".join(shlex.quote(p) for p in parts)


def create_stack(
    options: Options, moto_url: str, sink: ServerProcess, secrets: dict[str, str]
) -> dict[str, str]:
    """The template's resources and the secrets on moto; returns every setting the env file exports."""
    from jobwatch_tools.local_stack import create_local_stack

    webhook = f"{sink.url}/services/T000/B000/XXXX"
    env = {"AWS_ENDPOINT_URL": moto_url, **LOCAL_SETTINGS}
    os.environ.update(env)  # boto3 in this process talks to moto from here on
    if not options.template.is_file():
        raise SandboxError(f"{options.template} not found: run from the repository root, or pass --template")
    stack = create_local_stack(options.template, slack_webhook=webhook)
    import boto3

    client = boto3.client("secretsmanager")
    for name, value in secrets.items():
        client.create_secret(Name=name, SecretString=value)
    return {
        **env,
        **stack,
        "JOBWATCH_SLACK_API_URL": f"{sink.url}/api/",
        "JOBWATCH_SANDBOX_UPSTREAM": "",  # filled by the caller
        "JOBWATCH_SANDBOX_SLACK_WEBHOOK": webhook,
        "JOBWATCH_SANDBOX_API_KEY": SANDBOX_API_KEY,
    }


def write_env(path: Path, env: dict[str, str]) -> str:
    from jobwatch_tools.local_stack import render_exports

    text = render_exports(env)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)  # whoever sources it never reads half a file
    return text


def banner(
    show: Show,
    options: Options,
    urls: dict[str, str],
    jobs: list[ScenarioJob],
    secrets: dict[str, str],
    scenario_path: Path,
    exports: str,
) -> None:
    sim = urls["simulator"]
    lines = [
        "jobwatch sandbox: AWS, the vector databases and Slack, all on 127.0.0.1 (Ctrl-C stops it)",
        f"  AWS       moto server {urls['moto']}: template.yaml's table, topics and queues; "
        f"secrets {', '.join(secrets) or '(none)'}",
        f"  upstream  simulator {sim}: {len(jobs)} scripted jobs from {scenario_path}, "
        "one step per status request",
        f"  Slack     sink {urls['slack']}: the deployment's webhook; every post is printed below",
        f"  settings  {options.env_file}: in another terminal, `. {options.env_file}`",
        "",
        exports.rstrip("\n"),
        "",
        f"sample jobs (endpoint {sim}):",
    ]
    width = max(len(job.source) for job in jobs) if jobs else 0
    ids = max(len(job.job_id) for job in jobs) if jobs else 0
    for job in jobs:
        steps = " → ".join(step_label(step) for step in job.steps)
        scope = job.scope or ""
        key = "  (needs the key)" if job.api_key else ""
        lines.append(f"  {job.source:<{width}}  {job.job_id:<{ids}}  {scope:<17} {steps}{key}")
    lines += ["", "try (after `. " + str(options.env_file) + "`):"]
    first = jobs[0] if jobs else None
    if first is not None:
        check = ["jobwatch", "check", first.source, "--endpoint", sim]
        if first.backend:
            check += ["--backend", first.backend]
        if first.cluster_id:
            check += ["--cluster-id", first.cluster_id]
        check += ["--job-id", first.job_id]
        if first.api_key == SANDBOX_API_KEY:
            check += ["--api-key-env", "JOBWATCH_SANDBOX_API_KEY"]
        lines.append("  " + " ".join(shlex.quote(p) for p in [*check, "--json"]))
    lines += [f"  {track_command(job, sim, secrets)}" for job in jobs]
    lines += ["  jobwatch run --interval 5", "", "Slack posts, as they arrive:"]
    show("\n".join(lines))


def wait_for_stop(processes: list[ServerProcess]) -> str | None:
    """Block until SIGINT/SIGTERM (None) or until a server dies on its own (its name)."""
    stop = threading.Event()

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, handler)
    while not stop.wait(0.5):
        for proc in processes:
            # A terminal's Ctrl-C stops the children too: give our own handler a moment to say so.
            if proc.exit_code() is not None and not stop.wait(0.5):
                return proc.name
    return None


def run(options: Options) -> int:
    check_ports(
        {
            "moto": (options.moto_port, "--moto-port"),
            "simulator": (options.simulator_port, "--simulator-port"),
            "Slack sink": (options.slack_port, "--slack-port"),
        }
    )
    secrets, jobs, scenario_path = load(options)
    show = printer()
    # A terminal's Ctrl-C reaches the children too; they stop cleanly on it, and the sandbox stops
    # whatever is left itself, in reverse order.
    sink = slack_sink_process(port=options.slack_port, print_posts=show)
    sim = simulator_process(port=options.simulator_port, scenarios=[scenario_path])
    moto = moto_process(port=options.moto_port or free_port())
    started: list[ServerProcess] = []
    try:
        for proc in (sink, sim, moto):
            proc.start()
            started.append(proc)
        env = create_stack(options, moto.url, sink, secrets)
        env["JOBWATCH_SANDBOX_UPSTREAM"] = sim.url
        exports = write_env(options.env_file, env)
        urls = {"moto": moto.url, "simulator": sim.url, "slack": sink.url}
        banner(show, options, urls, jobs, secrets, scenario_path, exports)
        died = wait_for_stop(started)
        if died is not None:
            show(f"sandbox: {died} stopped on its own; stopping the rest")
            return 1
        show("sandbox: stopping")
        return 0
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not interrupt the clean-up
        for proc in reversed(started):
            proc.stop()
        # The env file points at servers that are gone: remove it, so nobody sources stale settings.
        with contextlib.suppress(FileNotFoundError):
            options.env_file.unlink()


def main(argv: Sequence[str] | None = None) -> int:
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    options = parse_args(argv)
    if options is None:
        return 0
    try:
        return run(options)
    except SandboxError as exc:
        print(f"sandbox: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:  # a server did not start: ServerProcess says which and why
        print(f"sandbox: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # Ctrl-C during start-up, before the handlers were in place
        print("sandbox: interrupted during start-up", file=sys.stderr)
        return 130
