"""Invoke one function of the `sam build` artifact on this machine, without Docker.

    make invoke FN=PollerFunction EVENT=events/poller-schedule.json
    python -m jobwatch_tools.lambda_local PollerFunction events/poller-schedule.json

What runs is `python3.13 -m awslambdaric app.handler`, the runtime interface client of Lambda's python
runtimes, alone in `.venv-lambda` as in /var/runtime, with the working directory
`.aws-sam/build/<Function>` (/var/task) and PYTHONPATH = overlay : the layer's
`python/lib/python3.13/site-packages` : the layer's `python` (/opt/...). It talks to a local Runtime
API (runtime_api.py). The function's code and dependencies are the artifact's, as built; only the
layer's compiled distributions come from an overlay of this machine's builds at the same versions
(overlay.py). Bytecode goes next to the build (`.aws-sam/local-pycache`), never into the artifact
that `sam deploy` zips.

The function gets a clean environment, as in Lambda:
  * its variables from the template (Globals merged with its own), Refs resolved against a local stack
    (`create_local_stack`) on AWS_ENDPOINT_URL, or on a throwaway moto server when that is unset;
  * as `sam local invoke` does, a declared variable set in the caller's environment takes that value
    (an empty value unsets it), then `--env-vars` (SAM's format) overrides declared variables;
  * AWS_ENDPOINT_URL is always the local endpoint: a local invocation never reaches real AWS;
  * last, what Lambda itself sets (handler, task root, function name, memory, region, credentials).

stdout carries only the response; stderr the runtime's logs (stdout and stderr, as CloudWatch gets
them) between START, END and REPORT lines. A failed invocation (init error, unhandled error, timeout,
runtime exit) ends stderr with one line `ERROR <errorType>: <errorMessage>` and exits 1; a usage
mistake (an unknown function, no build, no runtime venv) is one `jobwatch: ...` line and exits 2.

Not reproduced: the memory limit (only reported), freezing between invocations, the arm64 CPU itself.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Any

import boto3
from botocore.exceptions import EndpointConnectionError

from jobwatch.domain.text import terminal_safe
from jobwatch_tools.errors import OperatorError, explain
from jobwatch_tools.lambda_local.overlay import overlay_for
from jobwatch_tools.lambda_local.runtime_api import Result, RuntimeApi, error_payload
from jobwatch_tools.local_stack import create_local_stack, load_template

ACCOUNT_ID = "123456789012"
"""moto's account: the function ARN the runtime is told."""
INIT_LIMIT_S = 10.0
"""Lambda's init phase limit; a slower init is given the invocation's timeout on top, as Lambda does
when it re-runs a timed-out init inside the first invocation."""
DEFAULT_RUNTIME_PYTHON = Path(".venv-lambda/bin/python")
MOTO_START_S = 30.0
_FUNCTION_TYPES = ("AWS::Serverless::Function", "AWS::Lambda::Function")
_RESERVED_PATH = "/usr/local/bin:/usr/bin:/bin"
_RESULT_SLACK_S = 0.2


@dataclass(frozen=True)
class FunctionSpec:
    """A function of the built template: where its code is and how Lambda would run it."""

    logical_id: str
    code_dir: Path
    handler: str
    runtime: str
    timeout_s: float
    memory_mb: int
    layers: tuple[Path, ...]
    declared: frozenset[str]
    """The environment variables the template declares for it (Globals and its own)."""

    @property
    def layer_roots(self) -> list[Path]:
        """The layers' import roots, in PYTHONPATH order: a later layer's files win, as in /opt."""
        version = self.runtime.removeprefix("python")
        roots: list[Path] = []
        for layer in reversed(self.layers):
            roots += [layer / "python" / "lib" / f"python{version}" / "site-packages", layer / "python"]
        return [root for root in roots if root.is_dir()]


def _merged_properties(template: Mapping[str, Any], logical_id: str) -> dict[str, Any]:
    """Globals.Function merged with the function's properties, as SAM merges them."""
    merged = dict((template.get("Globals") or {}).get("Function") or {})
    properties = (template["Resources"][logical_id].get("Properties")) or {}
    for key, value in properties.items():
        if key == "Environment":
            variables = dict((merged.get("Environment") or {}).get("Variables") or {})
            variables.update((value or {}).get("Variables") or {})
            merged[key] = {"Variables": variables}
        elif key == "Layers":
            merged[key] = [*(merged.get(key) or []), *(value or [])]
        else:
            merged[key] = value
    return merged


def _layer_dir(template: Mapping[str, Any], build_dir: Path, layer: Any) -> Path:
    """The built directory of a layer the function lists (a Ref to a layer of this template)."""
    name = layer.get("Ref") if isinstance(layer, dict) else None
    spec = (template.get("Resources") or {}).get(name) if isinstance(name, str) else None
    if not isinstance(spec, dict):
        raise OperatorError(f"layer {layer!r} is not built by this template: only its own layers run locally")
    content = (spec.get("Properties") or {}).get("ContentUri")
    return build_dir / (content if isinstance(content, str) else str(name))


def function_spec(template: Mapping[str, Any], build_dir: Path, logical_id: str) -> FunctionSpec:
    resources = template.get("Resources") or {}
    functions = sorted(lid for lid, spec in resources.items() if spec.get("Type") in _FUNCTION_TYPES)
    if logical_id not in functions:
        raise OperatorError(f"no function {logical_id!r} in the template (functions: {', '.join(functions)})")
    props = _merged_properties(template, logical_id)
    runtime = str(props.get("Runtime", ""))
    if props.get("PackageType", "Zip") != "Zip" or not runtime.startswith("python"):
        raise OperatorError(f"{logical_id}: only zip functions on a python runtime run locally ({runtime!r})")
    spec = FunctionSpec(
        logical_id=logical_id,
        code_dir=build_dir / str(props.get("CodeUri", logical_id)),
        handler=str(props["Handler"]),
        runtime=runtime,
        timeout_s=float(props.get("Timeout", 3)),
        memory_mb=int(props.get("MemorySize", 128)),
        layers=tuple(_layer_dir(template, build_dir, layer) for layer in props.get("Layers") or []),
        declared=frozenset((props.get("Environment") or {}).get("Variables") or {}),
    )
    for path in (spec.code_dir, *spec.layers):
        if not path.is_dir():
            raise OperatorError(f"{path} is missing: build first (`make build`, or `make invoke` builds)")
    return spec


# -- environment ------------------------------------------------------------------------------------


def _env_vars_file(path: Path | None, spec: FunctionSpec) -> dict[str, str]:
    """`--env-vars` in SAM's format ({"Parameters": {...}, "<Function>": {...}}), declared names only."""
    if path is None:
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise OperatorError(f"--env-vars {path}: {exc}") from None
    chosen = {**(data.get("Parameters") or {}), **(data.get(spec.logical_id) or {})}
    ignored = sorted(set(chosen) - spec.declared)
    if ignored:
        _say(f"--env-vars: not declared for {spec.logical_id}, ignored as SAM does: {', '.join(ignored)}")
    return {name: str(value) for name, value in chosen.items() if name in spec.declared}


def function_environment(
    spec: FunctionSpec, resolved: Mapping[str, str], caller: Mapping[str, str], overrides: Mapping[str, str]
) -> dict[str, str]:
    """The template's variables for the function: resolved values, then the caller's environment and
    `overrides` for declared names (as `sam local invoke`); empty values are left out, as unset."""
    env = {name: value for name, value in resolved.items() if name in spec.declared}
    env.update({name: caller[name] for name in spec.declared if name in caller})
    env.update(overrides)
    return {name: value for name, value in env.items() if value != ""}


def _credentials() -> dict[str, str]:
    """The caller's AWS credentials (any values do for moto)."""
    found = boto3.Session().get_credentials()
    if found is None:
        return {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    frozen = found.get_frozen_credentials()
    credentials = {
        "AWS_ACCESS_KEY_ID": frozen.access_key,
        "AWS_SECRET_ACCESS_KEY": frozen.secret_key,
        "AWS_SESSION_TOKEN": frozen.token,
    }
    return {name: value for name, value in credentials.items() if value}


def lambda_environment(
    spec: FunctionSpec, *, api: str, python_path: Sequence[Path], pycache: Path, region: str
) -> dict[str, str]:
    """What Lambda sets itself; the template cannot override these."""
    name = spec.logical_id
    return {
        "PATH": ":".join([*(str(layer / "bin") for layer in spec.layers), _RESERVED_PATH]),
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "LD_LIBRARY_PATH": ":".join(
            [str(spec.code_dir), str(spec.code_dir / "lib"), *(str(layer / "lib") for layer in spec.layers)]
        ),
        "PYTHONPATH": ":".join(str(path) for path in python_path),
        "PYTHONPYCACHEPREFIX": str(pycache),
        "LAMBDA_TASK_ROOT": str(spec.code_dir),
        "_HANDLER": spec.handler,
        # Also what makes awslambdaric poll for events on a thread, as in Lambda.
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{spec.runtime}",
        "AWS_LAMBDA_RUNTIME_API": api,
        "AWS_LAMBDA_FUNCTION_NAME": name,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": time.strftime("%Y/%m/%d/[$LATEST]") + "local",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
        **_credentials(),
    }


# -- the local AWS endpoint -------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for_moto(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + MOTO_START_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise OperatorError(
                f"moto server did not start (exit status {process.returncode}); is moto installed in "
                f"{sys.executable}? Or set AWS_ENDPOINT_URL to a running one"
            )
        with suppress(OSError), urllib.request.urlopen(f"{url}/moto-api/", timeout=1):  # noqa: S310
            return
        time.sleep(0.05)
    raise OperatorError(f"moto server did not answer on {url} within {MOTO_START_S:.0f} s")


@contextmanager
def local_endpoint() -> Iterator[str]:
    """AWS_ENDPOINT_URL when set; else a throwaway moto server, stopped afterwards."""
    configured = os.environ.get("AWS_ENDPOINT_URL")
    if configured:
        yield configured
        return
    url = f"http://127.0.0.1:{_free_port()}"
    command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", url.rsplit(":", 1)[1]]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for_moto(url, process)
        _say(f"AWS_ENDPOINT_URL is not set: a throwaway moto server at {url}, stopped afterwards")
        os.environ["AWS_ENDPOINT_URL"] = url  # for the local stack created in this process
        yield url
    finally:
        os.environ.pop("AWS_ENDPOINT_URL", None)
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# -- running the runtime ----------------------------------------------------------------------------


def _failure(error_type: str, message: str) -> Result:
    return Result("error", json.dumps({"errorType": error_type, "errorMessage": message}).encode())


def _max_rss_mb(pid: int) -> int | None:
    """The process's peak resident memory (what Lambda's REPORT calls Max Memory Used)."""
    with suppress(OSError, ValueError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) // 1024
    return None


def _forward(stream: IO[bytes]) -> None:
    """The runtime's output to our stderr. awslambdaric joins a multi-line record with \\r (one
    CloudWatch event); shown as lines here, so a terminal does not overwrite them."""
    for line in iter(stream.readline, b""):
        sys.stderr.buffer.write(line.replace(b"\r", b"\n"))
        sys.stderr.buffer.flush()


class _Runtime:
    """One runtime process (`python -m awslambdaric <handler>`) with its Runtime API."""

    def __init__(self, spec: FunctionSpec, python: str, env: dict[str, str], api: RuntimeApi) -> None:
        self.spec, self.api = spec, api
        self.started = time.monotonic()
        self.process = subprocess.Popen(
            [python, "-m", "awslambdaric", spec.handler],
            cwd=spec.code_dir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        assert self.process.stdout is not None
        self.logs = threading.Thread(target=_forward, args=(self.process.stdout,), daemon=True)
        self.logs.start()

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        """Lambda does not ask a sandbox to stop either: SIGKILL, then the rest of its output."""
        if self.alive():
            with suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self.logs.join(timeout=2)

    def _exit_failure(self, what: str) -> Result:
        code = self.process.poll()
        if code is None:
            return _failure("Sandbox.Timedout", what)
        status = f"signal {-code}" if code < 0 else f"exit status {code}"
        return _failure("Runtime.ExitError", f"Runtime exited with error: {status}")

    def init(self) -> Result | float:
        """The init duration in ms, or the result that ended the init phase."""
        limit = INIT_LIMIT_S + self.spec.timeout_s
        if self.api.wait_ready(limit, self.alive):
            return ((self.api.ready_at or self.started) - self.started) * 1000
        if self.api.init_error is not None:
            return self.api.init_error
        return self._exit_failure(f"init did not finish within {limit:.0f} seconds")

    def invoke(self, event: bytes, arn: str) -> tuple[str, Result, float]:
        """The invocation's request id, result and duration in ms."""
        request_id = self.api.enqueue(event, timeout_s=self.spec.timeout_s, function_arn=arn)
        _say(f"START RequestId: {request_id} Version: $LATEST", prefix="")
        result = self.api.wait(request_id, self.spec.timeout_s + _RESULT_SLACK_S, self.alive)
        served = self.api.invocation(request_id).served_at or time.monotonic()
        if result is None or result.received_at - served > self.spec.timeout_s:
            result = self._exit_failure(f"Task timed out after {self.spec.timeout_s:.2f} seconds")
        return request_id, result, min(result.received_at - served, self.spec.timeout_s) * 1000


def run_function(
    spec: FunctionSpec, python: str, env: dict[str, str], api: RuntimeApi, event: bytes
) -> Result:
    """Start the runtime, wait for its init, invoke it once with `event`, stop it."""
    runtime = _Runtime(spec, python, env, api)
    try:
        init = runtime.init()
        if isinstance(init, Result):
            return init
        arn = f"arn:aws:lambda:{env['AWS_REGION']}:{ACCOUNT_ID}:function:{spec.logical_id}"
        request_id, result, duration_ms = runtime.invoke(event, arn)
        max_memory = _max_rss_mb(runtime.process.pid)
    finally:
        runtime.stop()
    _say(f"END RequestId: {request_id}", prefix="")
    _say(
        f"REPORT RequestId: {request_id}\tDuration: {duration_ms:.2f} ms\tMemory Size: {spec.memory_mb} MB"
        f"\tMax Memory Used: {max_memory or '?'} MB\tInit Duration: {init:.2f} ms",
        prefix="",
    )
    return result


# -- the command ------------------------------------------------------------------------------------


def _say(line: str, *, prefix: str = "invoke: ") -> None:
    print(f"{prefix}{line}", file=sys.stderr, flush=True)


def _runtime_python(path: Path, runtime: str) -> str:
    """The interpreter with the runtime interface client; it must be the function's python version."""
    if not path.exists():
        raise OperatorError(f"{path} does not exist: create it with `make .venv-lambda/.installed`")
    probe = "import sys, awslambdaric; print(f'python{sys.version_info[0]}.{sys.version_info[1]}')"
    result = subprocess.run([str(path), "-c", probe], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise OperatorError(f"{path} cannot import awslambdaric: make it with `make .venv-lambda/.installed`")
    if result.stdout.strip() != runtime:
        raise OperatorError(f"{path} is {result.stdout.strip()}, the function runs on {runtime}")
    return str(path.absolute())  # not resolved: a venv's python is a symlink out of the venv


def _read_event(name: str) -> bytes:
    try:
        event = sys.stdin.buffer.read() if name == "-" else Path(name).read_bytes()
        json.loads(event)
    except (OSError, ValueError) as exc:
        raise OperatorError(f"event {name}: {exc}") from None
    return event


def _report(result: Result) -> int:
    if result.kind == "response":
        sys.stdout.buffer.write(result.body.rstrip(b"\n") + b"\n")
        sys.stdout.flush()
        return 0
    payload = error_payload(result)
    message = " ".join(str(payload["errorMessage"]).split())
    print(terminal_safe(f"ERROR {payload['errorType']}: {message}"), file=sys.stderr, flush=True)
    return 1


def _use_local_defaults() -> str:
    """Region and credentials for the local endpoint when the caller has none (moto takes any);
    returns the region."""
    region = boto3.Session().region_name or "us-east-1"
    os.environ.setdefault("AWS_DEFAULT_REGION", region)
    if boto3.Session().get_credentials() is None:
        os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
    return region


def invoke(args: argparse.Namespace) -> int:
    build_dir = args.build_dir.resolve()
    template_path = build_dir / "template.yaml"
    if not template_path.is_file():
        raise OperatorError(f"{template_path} does not exist: build first (`make build`, or `make invoke`)")
    spec = function_spec(load_template(template_path), build_dir, args.function)
    if args.timeout is not None:
        spec = replace(spec, timeout_s=args.timeout)
    python = _runtime_python(args.runtime_python, spec.runtime)
    event = _read_event(args.event)
    overrides = _env_vars_file(args.env_vars, spec)
    deps_dir = (args.deps_dir or build_dir.parent / "local-deps").resolve()
    overlay = overlay_for(spec.layer_roots, python=python, runtime=spec.runtime, deps_dir=deps_dir)
    python_path = ([overlay] if overlay else []) + spec.layer_roots
    region = _use_local_defaults()
    with local_endpoint() as endpoint:
        try:
            stack = create_local_stack(template_path, slack_webhook=None)
        except EndpointConnectionError:
            raise OperatorError(
                f"nothing answers at AWS_ENDPOINT_URL={endpoint}: start a moto server there, or unset "
                "AWS_ENDPOINT_URL for a throwaway one"
            ) from None
        env = function_environment(spec, stack.functions.get(spec.logical_id, {}), os.environ, overrides)
        env["AWS_ENDPOINT_URL"] = endpoint  # never real AWS, whatever was declared or overridden
        api = RuntimeApi().start()
        try:
            reserved = lambda_environment(
                spec,
                api=api.address,
                python_path=python_path,
                pycache=build_dir.parent / "local-pycache",
                region=region,
            )
            return _report(run_function(spec, python, {**env, **reserved}, api, event))
        finally:
            api.stop()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m jobwatch_tools.lambda_local",
        description="Invoke a function of the `sam build` artifact through awslambdaric, without Docker.",
    )
    parser.add_argument("function", help="the function's logical id in template.yaml, e.g. PollerFunction")
    parser.add_argument("event", help="event JSON file (- for stdin), e.g. events/poller-schedule.json")
    parser.add_argument("--build-dir", type=Path, default=Path(".aws-sam/build"), help="sam build's output")
    parser.add_argument(
        "--runtime-python",
        type=Path,
        default=DEFAULT_RUNTIME_PYTHON,
        help="python3.13 with awslambdaric (default .venv-lambda/bin/python, made by the Makefile)",
    )
    parser.add_argument(
        "--deps-dir", type=Path, help="cache of local-architecture overlays (default .aws-sam/local-deps)"
    )
    parser.add_argument("--env-vars", type=Path, help="SAM --env-vars JSON: overrides of declared variables")
    parser.add_argument("--timeout", type=float, help="seconds, instead of the function's Timeout")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return explain(lambda: invoke(args), verbose=False, say=lambda line: print(line, file=sys.stderr))
