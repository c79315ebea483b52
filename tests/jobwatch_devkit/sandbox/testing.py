"""The sandbox as a subprocess on free ports, for tests: start, read its env file and output, Ctrl-C it.

Why here: the sandbox test and the README test both need a running sandbox exactly as `make sandbox`
starts it (`python -m jobwatch_devkit.sandbox`), in its own process group so that a test can send it
a terminal's Ctrl-C (SIGINT to the whole group) without touching anything else.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Self

from ..processes import _devkit_env

READY_TEXT = "Slack posts, as they arrive:"
"""The banner's last line: everything is up and the env file is written."""


def parse_env_file(text: str) -> dict[str, str]:
    """The `export NAME=value` lines of an env file (values shell-unquoted)."""
    env: dict[str, str] = {}
    for line in text.splitlines():
        words = shlex.split(line)
        if len(words) == 2 and words[0] == "export" and "=" in words[1]:
            name, value = words[1].split("=", 1)
            env[name] = value
    return env


class SandboxRun:
    """`python -m jobwatch_devkit.sandbox` in `workdir`, every port free (0) unless `args` say otherwise."""

    def __init__(self, workdir: Path, args: Sequence[str] = (), *, timeout: float = 60.0) -> None:
        self.workdir = workdir
        self.env_file = workdir / ".sandbox" / "env"
        self.args = ["--moto-port", "0", "--simulator-port", "0", "--slack-port", "0", *args]
        self.timeout = timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._out: list[str] = []
        self._err: list[str] = []
        self._lock = threading.Lock()
        self._readers: list[threading.Thread] = []
        self.env: dict[str, str] = {}

    def start(self, template: Path) -> Self:
        argv = [sys.executable, "-m", "jobwatch_devkit.sandbox", "--template", str(template), *self.args]
        self._proc = subprocess.Popen(
            argv,
            cwd=self.workdir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=_devkit_env(),
            start_new_session=True,
        )
        assert self._proc.stdout is not None and self._proc.stderr is not None
        for stream, sink in ((self._proc.stdout, self._out), (self._proc.stderr, self._err)):
            reader = threading.Thread(target=self._read, args=(stream, sink), daemon=True)
            reader.start()
            self._readers.append(reader)
        try:
            self.wait_for_output(READY_TEXT, self.timeout)
        except BaseException:
            self.stop()
            raise
        self.env = parse_env_file(self.env_file.read_text(encoding="utf-8"))
        return self

    def _read(self, stream: IO[bytes], sink: list[str]) -> None:
        for raw in stream:
            with self._lock:
                sink.append(raw.decode("utf-8", "replace"))

    @property
    def stdout(self) -> str:
        with self._lock:
            return "".join(self._out)

    @property
    def stderr(self) -> str:
        with self._lock:
            return "".join(self._err)

    def wait_for_output(self, text: str, timeout: float = 20.0, *, count: int = 1) -> str:
        """Block until stdout holds `text` (`count` times); the whole stdout so far."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            out = self.stdout
            if out.count(text) >= count:
                return out
            if self._proc is not None and self._proc.poll() is not None:
                break
            time.sleep(0.1)
        code = None if self._proc is None else self._proc.poll()
        raise AssertionError(
            f"sandbox stdout lacks {text!r} x{count} (exit code {code})\n--- stdout:\n{self.stdout}"
            f"\n--- stderr:\n{self.stderr}"
        )

    def interrupt(self, timeout: float = 30.0) -> int:
        """A terminal's Ctrl-C: SIGINT to the sandbox's own process group. Returns its exit code."""
        proc = self._proc
        assert proc is not None
        os.killpg(proc.pid, signal.SIGINT)
        try:
            code = proc.wait(timeout)
        finally:
            self.stop()
        return code

    def stop(self) -> None:
        """Whatever is left of the group (after a failed test): SIGTERM, then SIGKILL."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
        with contextlib.suppress(ProcessLookupError):  # a server the sandbox failed to stop
            os.killpg(proc.pid, signal.SIGKILL)
        for reader in self._readers:
            reader.join(2.0)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
