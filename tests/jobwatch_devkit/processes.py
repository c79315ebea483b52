"""Start the devkit servers (and moto's server) as subprocesses on free ports, and stop them cleanly.

Why subprocesses: the demo, the integration tests and the benchmark must see the servers as separate
programs (own GIL, own event loop, real sockets), exactly like the upstreams they stand in for.
Readiness is explicit, never a sleep: our servers print `READY <url>`; moto is polled on /moto-api/.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Self

from .http11 import HOST

__all__ = [
    "ServerProcess",
    "free_port",
    "moto_process",
    "running",
    "simulator_process",
    "slack_sink_process",
]

_PACKAGE_DIR = Path(__file__).parent  # not resolved: a symlinked package keeps its name
# Run our modules under the name of the directory they live in, with its parent on PYTHONPATH: works for
# an installed `jobwatch_devkit`, a `jobwatch_devkit` symlink, and a plain checkout (`tests/jobwatch_devkit`).
_MODULE_PREFIX = _PACKAGE_DIR.name
_IMPORT_ROOT = str(_PACKAGE_DIR.parent)


def free_port() -> int:
    """A port that was free a moment ago (only for servers that cannot report their own, like moto)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    """A server subprocess with a readiness check; use as a context manager or call start()/stop().

    Ready means a `READY <url>` line on stdout, or, with `ready_url`, that URL answering 200.
    stderr goes to a temp file whose tail is included in start-up errors.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        ready_url: str | None = None,
        url: str | None = None,
        env: dict[str, str] | None = None,
        timeout: float = 20.0,
        forward: Callable[[str], None] | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self._ready_url = ready_url
        self._url = url
        self._env = env
        self.timeout = timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] | None = None
        self._drain: threading.Thread | None = None
        self._forward = forward
        """Given each stdout line after READY (the sandbox shows the Slack sink's printed posts)."""

    @property
    def url(self) -> str:
        """The server's base URL, `http://127.0.0.1:PORT`."""
        if self._url is None:
            raise RuntimeError(f"{self.name} is not started")
        return self._url

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    def exit_code(self) -> int | None:
        """None while running (or never started), else the code it exited with on its own."""
        return None if self._proc is None else self._proc.poll()

    def start(self) -> str:
        if self._proc is not None:
            raise RuntimeError(f"{self.name} already started")
        # Lives as long as the process (closed in stop()), so no `with` here.
        self._stderr = tempfile.TemporaryFile(prefix=f"{self.name}-stderr-")  # noqa: SIM115
        self._proc = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env=self._env,
        )
        try:
            if self._ready_url is None:
                self._url = self._wait_for_ready_line()
            else:
                self._wait_for_http(self._ready_url)
        except BaseException:
            self.stop()
            raise
        return self.url

    def _wait_for_ready_line(self) -> str:
        proc = self._proc
        assert proc is not None and proc.stdout is not None
        stdout = proc.stdout
        found: list[str] = []
        done = threading.Event()

        def read() -> None:
            for raw in stdout:  # keeps draining after READY so the pipe never fills up
                line = raw.decode("utf-8", "replace").strip()
                if not found and line.startswith("READY "):
                    found.append(line.split(" ", 1)[1])
                    done.set()
                elif found and self._forward is not None:
                    self._forward(raw.decode("utf-8", "replace").rstrip("\n"))
            done.set()

        self._drain = threading.Thread(target=read, name=f"{self.name}-stdout", daemon=True)
        self._drain.start()
        if not done.wait(self.timeout) or not found:
            raise RuntimeError(self._failure("did not print READY"))
        return found[0]

    def _wait_for_http(self, url: str) -> None:
        deadline = time.monotonic() + self.timeout
        proc = self._proc
        assert proc is not None
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(self._failure("exited during start-up"))
            with (
                contextlib.suppress(OSError, urllib.error.URLError),
                urllib.request.urlopen(url, timeout=1.0) as response,  # noqa: S310 - local URL
            ):
                if response.status == 200:
                    return
            time.sleep(0.05)
        raise RuntimeError(self._failure(f"did not answer 200 on {url}"))

    def _failure(self, what: str) -> str:
        code = None if self._proc is None else self._proc.poll()
        tail = self.stderr_tail()
        return f"{self.name} {what} within {self.timeout}s (exit code {code}); stderr tail:\n{tail}"

    def stderr_tail(self, limit: int = 4000) -> str:
        if self._stderr is None or self._stderr.closed:
            return ""
        self._stderr.flush()
        self._stderr.seek(0, os.SEEK_END)
        size = self._stderr.tell()
        self._stderr.seek(max(0, size - limit))
        return self._stderr.read().decode("utf-8", "replace")

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, wait, then SIGKILL if needed. Returns the exit code (None if it was never started)."""
        proc, self._proc = self._proc, None
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout)
        if proc.stdout is not None:
            proc.stdout.close()
        if self._drain is not None:
            self._drain.join(1.0)
            self._drain = None
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
        return proc.returncode

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _devkit_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (_IMPORT_ROOT, env.get("PYTHONPATH", "")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def simulator_process(
    *,
    port: int = 0,
    latency_ms: float = 0.0,
    timeout: float = 20.0,
    scenarios: Sequence[Path] = (),
) -> ServerProcess:
    """The upstream simulator as a process; `port=0` lets it pick (the READY line reports it).
    `scenarios`: scenario files it serves from the start (docs/simulator.md)."""
    argv = [sys.executable, "-m", f"{_MODULE_PREFIX}.simulator", "--port", str(port)]
    if latency_ms:
        argv += ["--latency-ms", str(latency_ms)]
    for scenario in scenarios:
        argv += ["--scenario", str(scenario)]
    return ServerProcess("simulator", argv, env=_devkit_env(), timeout=timeout)


def slack_sink_process(
    *,
    port: int = 0,
    latency_ms: float = 0.0,
    timeout: float = 20.0,
    print_posts: Callable[[str], None] | None = None,
) -> ServerProcess:
    """The Slack sink as a process; its webhook URL is `<url>/services/T000/B000/XXXX`.
    With `print_posts`, the sink prints each post readably and every line of it is given to that."""
    argv = [sys.executable, "-m", f"{_MODULE_PREFIX}.slack_sink", "--port", str(port)]
    if latency_ms:
        argv += ["--latency-ms", str(latency_ms)]
    if print_posts is not None:
        argv.append("--print-posts")
    return ServerProcess("slack-sink", argv, env=_devkit_env(), timeout=timeout, forward=print_posts)


def moto_process(*, port: int | None = None, timeout: float = 30.0) -> ServerProcess:
    """moto's standalone server (`python -m moto.server`), ready once GET /moto-api/ answers 200."""
    chosen = port or free_port()
    url = f"http://{HOST}:{chosen}"
    argv = [sys.executable, "-m", "moto.server", "-H", HOST, "-p", str(chosen)]
    return ServerProcess("moto", argv, ready_url=f"{url}/moto-api/", url=url, timeout=timeout)


@contextlib.contextmanager
def running(*processes: ServerProcess) -> Iterator[list[str]]:
    """Start several processes (in order), yield their URLs, stop them all (in reverse) on exit."""
    started: list[ServerProcess] = []
    try:
        for proc in processes:
            proc.start()
            started.append(proc)
        yield [p.url for p in started]
    finally:
        for proc in reversed(started):
            proc.stop()
