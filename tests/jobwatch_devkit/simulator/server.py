"""The simulator's HTTP server: routes each upstream path to its source, serves scripts, records requests.

Why here and not in the vendor modules: locking, recording, latency and the script cursor are the
same for every source; the vendor modules only say what a body looks like.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from ..http11 import Disconnect, HttpApp, Request, Response
from . import milvus, pinecone, weaviate, zilliz
from .control import handle_control
from .hostile_bodies import CONNECTION, HOSTILE_KINDS, Streamed, render_hostile
from .jobs import Job, SharedStep, drop_keys, resolve_holds
from .scenario_file import load_scenario
from .script import Fault, FaultKind, JobState, Step
from .sources import DIALECTS, dialect_of


class RequestRecord(NamedTuple):
    """One upstream request as seen by the simulator (control API calls are not recorded)."""

    method: str
    path: str
    """The path percent-decoded, as the simulator routes it."""
    source: str | None
    job_id: str | None
    status: int
    """HTTP status answered; 0 when the connection was reset, dropped or left hanging."""
    at: float
    raw_path: str = ""
    """The path exactly as it arrived on the request line (percent-encoding kept, no query): what a
    test of URL building compares, since `/a%2Fb` and `/a/b` decode alike."""

    def to_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            "rawPath": self.raw_path,
            "source": self.source,
            "jobId": self.job_id,
            "status": self.status,
            "at": self.at,
        }


class UpstreamSimulator(HttpApp):
    """All upstream status APIs on one port, driven by per-job scripts. Thread-safe.

    Jobs are keyed by (source, job id). `backend`/`cluster_id` None means 'any': the job answers under
    whatever backend or cluster the request names. With `api_key`, requests must carry it (Bearer, or
    `Api-Key` for Pinecone) or get the vendor's real 401 body.
    """

    def __init__(self, *, port: int = 0, latency_ms: float = 0.0, log_limit: int = 200_000) -> None:
        super().__init__(port=port)
        self._lock = threading.Lock()
        self._initial_latency_ms = latency_ms
        self._latency_ms = latency_ms
        self._jobs: dict[tuple[str, str], Job] = {}
        self._groups: dict[str, list[SharedStep]] = {}
        self._by_job: Counter[tuple[str, str]] = Counter()
        self._by_path: Counter[str] = Counter()
        self._log: deque[RequestRecord] = deque(maxlen=log_limit)

    @property
    def url(self) -> str:
        """Same as `base_url`: what a JobSpec's `endpoint` should be for any source."""
        return self.base_url

    # -- scripting (in-process API) --------------------------------------------------------------------

    @property
    def latency_ms(self) -> float:
        return self._latency_ms

    @latency_ms.setter
    def latency_ms(self, value: float) -> None:
        if value < 0:
            raise ValueError("latency must be >= 0")
        self._latency_ms = value

    def add_job(
        self,
        source: str,
        job_id: str,
        steps: Sequence[Step],
        *,
        backend: str | None = None,
        cluster_id: str | None = None,
        api_key: str | None = None,
        collection: str | None = None,
    ) -> None:
        """Register (or replace) a scripted job."""
        dialect = dialect_of(source)
        job = Job.new(
            source,
            job_id,
            resolve_holds(steps),
            backend=backend,
            cluster_id=cluster_id,
            api_key=api_key,
            collection=collection or dialect.default_collection,
        )
        with self._lock:
            self._jobs[(source, job_id)] = job

    def add_static_jobs(
        self,
        source: str,
        ids: Iterable[str],
        state: JobState | Step | None = None,
        *,
        backend: str | None = None,
        cluster_id: str | None = None,
        api_key: str | None = None,
        collection: str | None = None,
    ) -> int:
        """Register many jobs that all serve one shared step (default: the source's running state).

        For the benchmark: cheap to create, no per-job script; `set_all` flips every static job of a
        source at once. Returns the number of jobs added.
        """
        dialect = dialect_of(source)
        shared = SharedStep(_as_step(state) if state is not None else Step(state=JobState()))
        jobs = [
            Job.new(
                source,
                job_id,
                [],
                backend=backend,
                cluster_id=cluster_id,
                api_key=api_key,
                collection=collection or dialect.default_collection,
                shared=shared,
            )
            for job_id in ids
        ]
        with self._lock:
            self._groups.setdefault(source, []).append(shared)
            for job in jobs:
                self._jobs[(source, job.job_id)] = job
        return len(jobs)

    def set_all(self, source: str, state: JobState | Step) -> int:
        """Make every static job of `source` serve `state` from now on; returns how many jobs changed."""
        dialect_of(source)
        step = _as_step(state)
        with self._lock:
            for shared in self._groups.get(source, []):
                shared.step = step
            return sum(1 for job in self._jobs.values() if job.source == source and job.shared is not None)

    def advance(self, job_id: str, *, source: str | None = None, steps: int = 1) -> int:
        """Move a scripted job's cursor on (releases a `hold`). Returns how many jobs matched."""
        with self._lock:
            matched = [
                job
                for job in self._jobs.values()
                if job.job_id == job_id and (source is None or job.source == source)
            ]
            for job in matched:
                job.advance(steps)
        return len(matched)

    def reset(self) -> None:
        """Forget jobs, counters and the log; latency returns to its start value."""
        with self._lock:
            self._jobs.clear()
            self._groups.clear()
            self._by_job.clear()
            self._by_path.clear()
            self._log.clear()
            self._latency_ms = self._initial_latency_ms

    # -- observation -----------------------------------------------------------------------------------

    def request_count(self, job_id: str, *, source: str | None = None) -> int:
        """Status requests that named this job (all sources unless `source` is given)."""
        with self._lock:
            return sum(n for (src, jid), n in self._by_job.items() if jid == job_id and source in (None, src))

    def job_counts(self) -> dict[str, int]:
        """Status requests per job id (summed over sources)."""
        with self._lock:
            return self._job_counts_locked()

    def _job_counts_locked(self) -> dict[str, int]:
        out: Counter[str] = Counter()
        for (_, job_id), n in self._by_job.items():
            out[job_id] += n
        return dict(out)

    def path_counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._by_path)

    def requests_log(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._log)

    def requests_report(self, *, log: bool, since: int = 0, limit: int | None = None) -> dict[str, Any]:
        """Totals, counts per job and per path and (with `log`) the log from `since`, as one snapshot."""
        with self._lock:
            out: dict[str, Any] = {
                "total": len(self._log),
                "byJob": self._job_counts_locked(),
                "byPath": dict(self._by_path),
            }
            if log:
                records = list(self._log)[since:]
                if limit is not None:
                    records = records[:limit]
                out["requests"] = [r.to_json() for r in records]
        return out

    def jobs_info(self) -> list[dict[str, Any]]:
        """Each job's cursor, for debugging scripts."""
        with self._lock:
            return [
                {
                    "source": j.source,
                    "jobId": j.job_id,
                    "static": j.shared is not None,
                    "index": j.index,
                    "served": j.served,
                    "steps": len(j.steps),
                    "requests": self._by_job[(j.source, j.job_id)],
                }
                for j in self._jobs.values()
            ]

    # -- HTTP ------------------------------------------------------------------------------------------

    async def _on_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Each connection task knows its connection: streamed fault answers write to it directly."""
        CONNECTION.set((reader, writer))
        await super()._on_connection(reader, writer)

    async def handle(self, request: Request) -> Response:
        path = request.path
        if path.startswith("/_sim/"):
            return handle_control(self, request)
        parts = path.split("/")
        method = request.method
        if parts[1:3] == ["v1", "export"] and len(parts) == 5:
            if method != "GET":
                return weaviate.method_not_allowed(method, "GET")
            return await self._status(request, weaviate.WEAVIATE_EXPORT, parts[4], backend=parts[3])
        if parts[1:3] == ["v1", "backups"] and len(parts) in (4, 5, 6):
            if method != "GET":
                return weaviate.method_not_allowed(method, "GET")
            if len(parts) == 4:
                return await self._weaviate_list(request, parts[3])
            if len(parts) == 5:
                return await self._status(request, weaviate.WEAVIATE_BACKUP, parts[4], backend=parts[3])
            if parts[5] == "restore":
                return await self._status(request, weaviate.WEAVIATE_RESTORE, parts[4], backend=parts[3])
        if path.startswith("/v1/vector/collections/import/"):
            if method != "GET":
                return milvus.page_not_found()
            if path == "/v1/vector/collections/import/get":
                return await self._zilliz_v1_get(request)
            if path == "/v1/vector/collections/import/list":
                return await self._zilliz_v1_list(request)
        if path.startswith("/v2/vectordb/jobs/import/") and method == "POST":
            action = parts[-1]
            if action in ("getProgress", "describe", "get_progress") and len(parts) == 6:
                return await self._v2_describe(request)
            if action == "list" and len(parts) == 6:
                return await self._v2_list(request)
        if parts[1:3] == ["bulk", "imports"] and method == "GET":
            if len(parts) == 3:
                return await self._pinecone_list(request)
            if len(parts) == 4 and parts[3]:
                return await self._status(request, pinecone.PINECONE, parts[3])
        return await self._delayed(request, None, None, _unknown_route(path))

    async def _delayed(
        self,
        request: Request,
        source: str | None,
        job_id: str | None,
        response: Response,
        extra_ms: float = 0.0,
    ) -> Response:
        """Record the request, then answer after the global latency (plus a step's own delay)."""
        with self._lock:
            self._record(request, source, job_id, response.status)
            delay = (self._latency_ms + extra_ms) / 1000.0
        if delay > 0:
            await asyncio.sleep(delay)
        return response

    def _record(self, request: Request, source: str | None, job_id: str | None, status: int) -> None:
        self._by_path[request.path] += 1
        if job_id is not None and source is not None:
            self._by_job[(source, job_id)] += 1
        record = RequestRecord(
            request.method, request.path, source, job_id, status, time.time(), _raw_path(request.target)
        )
        self._log.append(record)

    async def _status(
        self,
        request: Request,
        source: str,
        job_id: str,
        *,
        backend: str | None = None,
        cluster_id: str | None = None,
    ) -> Response:
        """Serve one status request: not found, 401, or the job's current step (then advance)."""
        dialect = DIALECTS[source]
        extra_ms = 0.0
        hang_s = 0.0
        answer: Response | Streamed
        with self._lock:
            job = self._jobs.get((source, job_id))
            token = dialect.token(request)
            if job is None or not _scope_matches(job, backend, cluster_id):
                answer = dialect.not_found(job_id)
            elif job.api_key is not None and token != job.api_key:
                answer = dialect.unauthorized(token)
            else:
                step = job.take()
                extra_ms = step.delay_ms
                answer = self._render_step(job, step, backend or job.backend or "filesystem", request)
                if step.fault is not None and step.fault.kind is FaultKind.HANG:
                    hang_s = step.fault.seconds
            self._record(request, source, job_id, answer.status)
            delay = (self._latency_ms + extra_ms) / 1000.0 + hang_s
        if delay > 0:
            await asyncio.sleep(delay)
        if isinstance(answer, Streamed):
            await answer.run()
            return Response.dropped(Disconnect.CLOSE)  # whatever was streamed, the connection ends
        return answer

    # -- rendering -------------------------------------------------------------------------------------

    def _render_step(self, job: Job, step: Step, backend: str, request: Request) -> Response | Streamed:
        if step.state is not None:
            return Response.json(DIALECTS[job.source].body(job, step.state, backend))
        assert step.fault is not None
        if step.fault.kind in HOSTILE_KINDS:
            return self._render_hostile(job, step.fault, backend, request)
        return self._render_fault(job, step.fault, backend)

    def _render_hostile(self, job: Job, fault: Fault, backend: str, request: Request) -> Response | Streamed:
        """Bodies past the cap, endless, dripping or deeply nested, and credential echoes
        (`hostile_bodies`); the status body they carry is the lure state, else the job's last one."""
        dialect = DIALECTS[job.source]
        if fault.kind is FaultKind.ECHO:
            return render_hostile(fault, b"", request, dialect.error_body(fault.status or 401))
        status_body = Response.json(dialect.body(job, fault.lure or job.visible_state(), backend)).body
        return render_hostile(fault, status_body, request, None)

    def _render_fault(self, job: Job, fault: Fault, backend: str) -> Response:
        dialect = DIALECTS[job.source]
        kind = fault.kind
        headers = fault.headers
        if kind is FaultKind.HTTP or kind is FaultKind.RATE_LIMIT:
            status = fault.status or (429 if kind is FaultKind.RATE_LIMIT else 500)
            if fault.retry_after is not None:
                headers = (*headers, ("Retry-After", fault.retry_after))
            if fault.body is None:
                return Response.json(dialect.error_body(status), status, headers=headers)
            ctype = fault.content_type or _guess_content_type(fault.body)
            return Response.text(status, fault.body, content_type=ctype, headers=headers)
        if kind is FaultKind.API_ERROR:
            code = fault.code if fault.code is not None else 65535
            body = {"code": code, "message": fault.message or "simulated API error"}
            return Response.json(body, fault.status or 200, headers=headers)
        if kind is FaultKind.HANG or kind is FaultKind.DISCONNECT:
            return Response.dropped(Disconnect.CLOSE)
        if kind is FaultKind.RESET:
            return Response.dropped(Disconnect.RESET)
        base = dialect.body(job, job.visible_state(), backend)
        if kind is FaultKind.ARRAY:
            return Response.json([base], fault.status or 200, headers=headers)
        if kind is FaultKind.DRIFT:
            drop = fault.drop or dialect.status_keys
            drifted = drop_keys(base, dialect.job_object(base), drop)
            return Response.json(drifted, fault.status or 200, headers=headers)
        # MALFORMED: a truncated copy of a real body, served as JSON.
        full = Response.json(base).body
        return Response(fault.status or 200, full[: max(1, len(full) // 2)], "application/json", headers)

    # -- list endpoints (auto-discovery) ---------------------------------------------------------------

    def _list_jobs(
        self, request: Request, source: str, predicate: Callable[[Job], bool]
    ) -> list[Job] | Response:
        """Jobs of `source` matching `predicate` that the caller may see, or the source's 401."""
        dialect = DIALECTS[source]
        jobs = [j for j in self._jobs.values() if j.source == source and predicate(j)]
        token = dialect.token(request)
        keyed = [j for j in jobs if j.api_key is not None]
        if keyed and all(j.api_key != token for j in keyed):
            return dialect.unauthorized(token)
        return [j for j in jobs if j.api_key is None or j.api_key == token]

    async def _weaviate_list(self, request: Request, backend: str) -> Response:
        with self._lock:
            found = self._list_jobs(request, weaviate.WEAVIATE_BACKUP, lambda j: j.backend in (None, backend))
            if isinstance(found, Response):
                response = found
            else:
                found.sort(key=lambda j: j.started, reverse=request.query.get("order", "desc") != "asc")
                response = Response.json(weaviate.backup_list(found, backend))
        return await self._delayed(request, weaviate.WEAVIATE_BACKUP, None, response)

    async def _zilliz_v1_get(self, request: Request) -> Response:
        job_id = request.query.get("jobId")
        cluster_id = request.query.get("clusterId")
        if not job_id or not cluster_id:
            message = "Invalid parameter: jobId and clusterId are required."
            return await self._delayed(request, zilliz.ZILLIZ_V1, job_id, zilliz.v1_bad_params(message))
        return await self._status(request, zilliz.ZILLIZ_V1, job_id, cluster_id=cluster_id)

    async def _zilliz_v1_list(self, request: Request) -> Response:
        cluster_id = request.query.get("clusterId")
        if not cluster_id:
            missing = zilliz.v1_bad_params("Invalid parameter: clusterId is required.")
            return await self._delayed(request, zilliz.ZILLIZ_V1, None, missing)
        page_size, page = zilliz.page_params(request.query.get("pageSize"), request.query.get("currentPage"))
        with self._lock:
            found = self._list_jobs(request, zilliz.ZILLIZ_V1, lambda j: j.cluster_id in (None, cluster_id))
            if isinstance(found, Response):
                response = found
            else:
                response = Response.json(zilliz.v1_list_body(found, page_size, page))
        return await self._delayed(request, zilliz.ZILLIZ_V1, None, response)

    async def _v2_describe(self, request: Request) -> Response:
        """Zilliz v2 getProgress and Milvus describe share paths; `clusterId` in the body means Zilliz."""
        body = milvus.request_body(request)
        if isinstance(body, Response):
            return await self._delayed(request, milvus.MILVUS, None, body)
        zilliz_body = "clusterId" in body or "projectId" in body
        source = zilliz.ZILLIZ_V2 if zilliz_body else milvus.MILVUS
        job_id = body.get("jobId")
        if job_id is None or job_id == "":
            return await self._delayed(request, source, None, milvus.missing_job_id())
        if not isinstance(job_id, str):
            return await self._delayed(request, source, None, milvus.job_id_not_a_string(job_id))
        cluster = body.get("clusterId")
        cluster_id = cluster if isinstance(cluster, str) else None
        return await self._status(request, source, job_id, cluster_id=cluster_id)

    async def _v2_list(self, request: Request) -> Response:
        body = milvus.request_body(request)
        if isinstance(body, Response):
            return await self._delayed(request, milvus.MILVUS, None, body)
        with self._lock:
            if "clusterId" in body:
                source = zilliz.ZILLIZ_V2
                cluster = body.get("clusterId")
                found = self._list_jobs(request, source, lambda j: j.cluster_id in (None, cluster))
                if isinstance(found, Response):
                    response = found
                else:
                    size, page = zilliz.page_params(body.get("pageSize"), body.get("currentPage"))
                    response = Response.json(zilliz.v2_list_body(found, size, page))
            else:
                source = milvus.MILVUS
                collection = body.get("collectionName")
                found = self._list_jobs(request, source, lambda j: collection in (None, "", j.collection))
                response = found if isinstance(found, Response) else Response.json(milvus.list_body(found))
        return await self._delayed(request, source, None, response)

    async def _pinecone_list(self, request: Request) -> Response:
        paging = pinecone.page_params(request.query)
        if isinstance(paging, Response):
            return await self._delayed(request, pinecone.PINECONE, None, paging)
        limit, offset = paging
        with self._lock:
            found = self._list_jobs(request, pinecone.PINECONE, lambda j: True)
            if isinstance(found, Response):
                response = found
            else:
                response = Response.json(pinecone.list_body(found, limit, offset))
        return await self._delayed(request, pinecone.PINECONE, None, response)


def _raw_path(target: str) -> str:
    """A request target's path as sent: absolute-form targets lose scheme and host, all lose the query."""
    if target.startswith(("http://", "https://")):
        target = "/" + target.split("://", 1)[1].partition("/")[2]
    return target.partition("?")[0]


def _as_step(value: JobState | Step) -> Step:
    return value if isinstance(value, Step) else Step(state=value)


def _scope_matches(job: Job, backend: str | None, cluster_id: str | None) -> bool:
    if backend is not None and job.backend is not None and job.backend != backend:
        return False
    return not (DIALECTS[job.source].scope == "cluster" and job.cluster_id not in (None, cluster_id))


def _guess_content_type(body: str) -> str:
    stripped = body.lstrip()
    if stripped.startswith("<"):
        return "text/html"
    if stripped.startswith(("{", "[")):
        return "application/json"
    return "text/plain; charset=utf-8"


def _unknown_route(path: str) -> Response:
    if path.startswith("/v1/"):
        return weaviate.unknown_path(path)
    if path.startswith("/bulk/"):
        return pinecone.unknown_path(path)
    return milvus.page_not_found()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="jobwatch upstream simulator (binds 127.0.0.1 only)")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (see the READY line)")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="delay added to every upstream request")
    parser.add_argument(
        "--scenario",
        type=Path,
        action="append",
        default=[],
        metavar="FILE",
        help="scripted jobs to serve from the start (JSON or YAML, see docs/simulator.md); repeatable",
    )
    args = parser.parse_args(argv)
    sim = UpstreamSimulator(port=args.port, latency_ms=args.latency_ms)
    try:
        jobs = [job for path in args.scenario for job in load_scenario(path)]
    except (OSError, ValueError) as exc:
        print(f"simulator: {exc}", file=sys.stderr)
        return 2
    for job in jobs:
        job.add_to(sim)
    if jobs:
        files = len(args.scenario)
        print(f"simulator: {len(jobs)} scripted jobs from {files} scenario file(s)", file=sys.stderr)
    return sim.serve_cli()
