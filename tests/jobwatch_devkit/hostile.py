"""A hostile upstream on a real socket: answers built byte by byte to break a poller.

Each behaviour is chosen by the last path segment (the job id a source puts in its URL, e.g.
`GET /v1/export/s3/bomb`), so a job registered with that id is polled into it; `bomb~2` behaves as
`bomb`, so one cycle can hold many hostile jobs:

- `bomb`: a gzip body of about 300 KB that inflates to 300 MB (Content-Encoding: gzip);
- `endless`: a chunked body that never ends, sent as fast as the socket takes it;
- `drip`: a valid start, then one byte every `drip_every_s` seconds, forever;
- `huge-length`: `Content-Length: 10^12`, a few bytes, then silence;
- `deep`: JSON nested `deep_levels` deep;
- `echo-<status>`: an error with that HTTP status whose body and headers repeat the request's
  Authorization / Api-Key header back (as some proxies and gateways do);
- `ok-<id>`: a good Weaviate export status for `<id>` (the control: it must still be watched).

Tests start it in a thread (`HostileUpstream().start()`), like the other devkit servers.
"""

from __future__ import annotations

import asyncio
import functools
import json
import threading
import zlib
from collections.abc import Callable
from typing import Any

BOMB_INFLATED_BYTES = 300 * 1024 * 1024


@functools.cache
def gzip_bomb(inflated: int = BOMB_INFLATED_BYTES) -> bytes:
    """A gzip stream of `inflated` zero bytes, built in slices so building it stays cheap."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    zeros = bytes(1024 * 1024)
    parts = [compressor.compress(zeros) for _ in range(inflated // len(zeros))]
    parts.append(compressor.flush())
    return b"".join(parts)


def _head(status: int, headers: dict[str, str]) -> bytes:
    lines = [f"HTTP/1.1 {status} X"] + [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class HostileUpstream:
    def __init__(self, *, drip_every_s: float = 2.0, deep_levels: int = 100_000) -> None:
        self.drip_every_s = drip_every_s
        self.deep_levels = deep_levels
        self.port = 0
        self.requests: list[str] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stopping: asyncio.Event | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- lifecycle ----------------------------------------------------------------------------------

    def start(self) -> HostileUpstream:
        gzip_bomb()  # built before the first request, not while a poll waits
        self._thread = threading.Thread(target=self._run, name="hostile-upstream", daemon=True)
        self._thread.start()
        self._ready.wait(10)
        return self

    def _run(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._loop.run_until_complete(self._main())
        self._loop.close()

    async def _main(self) -> None:
        self._stopping = asyncio.Event()
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        await self._stopping.wait()
        self._server.close()
        tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def stop(self) -> None:
        if self._loop is None or self._stopping is None:
            return
        self._loop.call_soon_threadsafe(self._stopping.set)
        if self._thread is not None:
            self._thread.join(5)

    # -- serving ------------------------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                request_line, *header_lines = head.decode("latin-1").split("\r\n")
                headers = {
                    k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in header_lines if h)
                }
                length = int(headers.get("content-length", "0") or 0)
                if length:
                    await reader.readexactly(length)
                path = request_line.split(" ")[1].split("?", 1)[0]
                self.requests.append(path)
                name = path.rstrip("/").rsplit("/", 1)[-1].partition("~")[0]
                await self._behave(name, headers, writer)
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    async def _behave(self, name: str, headers: dict[str, str], writer: asyncio.StreamWriter) -> None:
        behaviours: dict[str, Callable[[asyncio.StreamWriter], Any]] = {
            "bomb": self._bomb,
            "endless": self._endless,
            "drip": self._drip,
            "huge-length": self._huge_length,
            "deep": self._deep,
        }
        if name in behaviours:
            await behaviours[name](writer)
        elif name.startswith("echo-"):
            await self._echo(int(name.removeprefix("echo-")), headers, writer)
        else:
            await self._ok(name, writer)

    async def _send(
        self, writer: asyncio.StreamWriter, status: int, headers: dict[str, str], body: bytes
    ) -> None:
        writer.write(_head(status, {**headers, "Content-Length": str(len(body))}) + body)
        await writer.drain()

    async def _ok(self, job_id: str, writer: asyncio.StreamWriter) -> None:
        body = json.dumps(
            {"id": job_id, "backend": "s3", "status": "TRANSFERRING", "classes": ["A"]}
        ).encode()
        await self._send(writer, 200, {"Content-Type": "application/json"}, body)

    async def _bomb(self, writer: asyncio.StreamWriter) -> None:
        headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
        await self._send(writer, 200, headers, gzip_bomb())

    async def _endless(self, writer: asyncio.StreamWriter) -> None:
        writer.write(_head(200, {"Content-Type": "application/json", "Transfer-Encoding": "chunked"}))
        chunk = b"[" + b"0," * 32_767
        framed = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
        while True:
            writer.write(framed)
            await writer.drain()

    async def _drip(self, writer: asyncio.StreamWriter) -> None:
        writer.write(_head(200, {"Content-Type": "application/json", "Content-Length": "1000000"}))
        while True:
            writer.write(b" ")
            await writer.drain()
            await asyncio.sleep(self.drip_every_s)

    async def _huge_length(self, writer: asyncio.StreamWriter) -> None:
        writer.write(
            _head(200, {"Content-Type": "application/json", "Content-Length": str(10**12)}) + b'{"id'
        )
        await writer.drain()
        await asyncio.sleep(3600)

    async def _deep(self, writer: asyncio.StreamWriter) -> None:
        body = b"[" * self.deep_levels + b"]" * self.deep_levels
        await self._send(writer, 200, {"Content-Type": "application/json"}, body)

    async def _echo(self, status: int, headers: dict[str, str], writer: asyncio.StreamWriter) -> None:
        secret = headers.get("authorization") or headers.get("api-key") or ""
        body = json.dumps({"error": {"message": f"bad request from {secret}", "echo": secret}}).encode()
        reply = {"Content-Type": "application/json", "X-Echo-Authorization": secret}
        if status == 429:
            reply["Retry-After"] = "1"
        await self._send(writer, status, reply, body)


def run_cycle_against(url: str, job_ids: list[str], environ: dict[str, str]) -> dict[str, Any]:
    """One real poll cycle (HTTP through the real upstream adapter, state in the in-memory fakes)
    over Weaviate exports with these ids at `url`; returns the cycle's counts and the events."""
    from jobwatch.adapters.http.upstream import HttpUpstream
    from jobwatch.app.poll_cycle import PollerDeps, run_cycle
    from jobwatch.domain.model import JobSpec
    from jobwatch.settings import PollerSettings

    from .fakes import FakeClock, FakeSecrets, InMemoryJobStore, RecordingPublisher

    settings = PollerSettings.from_env({"JOBWATCH_TABLE": "t", "JOBWATCH_TOPIC_ARN": "arn:t", **environ})
    clock, store, publisher = FakeClock(), InMemoryJobStore(), RecordingPublisher()
    secrets = FakeSecrets({"jobwatch/key": "sk-live-0123456789abcdef"})
    for job_id in job_ids:
        spec = JobSpec(
            source="weaviate-export", endpoint=url, job_id=job_id, backend="s3", secret_name="jobwatch/key"
        )
        store.add_job(spec, clock.now_iso())
    deps = PollerDeps(
        settings=settings,
        store=store,
        publisher=publisher,
        secrets=secrets,
        upstream=lambda: HttpUpstream(settings, settings.poll_concurrency),
        clock=clock,
    )
    report = asyncio.run(run_cycle(deps))
    stored = {job.spec.job_id: job.health.last_error for job in store.all_jobs()}
    return {"cycle": report.counts(), "events": publisher.events(), "errors": report.errors, "stored": stored}


def main() -> None:
    """`python -m jobwatch_devkit.hostile URL ID...`: one cycle, then the result and peak RSS as JSON."""
    import os
    import sys

    environ = {k: v for k, v in os.environ.items() if k.startswith("JOBWATCH_")}
    result = run_cycle_against(sys.argv[1], sys.argv[2:], environ)
    result["maxrss_mb"] = peak_rss_mb()
    print(json.dumps(result))


def peak_rss_mb() -> float:
    """This process image's peak resident set (VmHWM): unlike getrusage's ru_maxrss, it does not
    carry over the size of the process it was forked from."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError("no VmHWM in /proc/self/status")


if __name__ == "__main__":
    main()
