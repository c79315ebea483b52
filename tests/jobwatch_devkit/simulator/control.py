"""The `/_sim/*` control API: scripts the simulator from another process (the demo, benchmarks, CLI tests).

Every route maps onto the simulator's in-process API, so a script sent as JSON behaves exactly like
one built with the `script` builders. Errors are 400 `{"error": "..."}`; an unknown route is 404.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..http11 import Request, Response
from .script import JobState, Step, steps_from_json
from .sources import DIALECTS

if TYPE_CHECKING:
    from .server import UpstreamSimulator


def handle_control(sim: UpstreamSimulator, request: Request) -> Response:
    try:
        return _route(sim, request)
    except (ValueError, KeyError, TypeError) as exc:
        return Response.json({"error": f"{type(exc).__name__}: {exc}"}, 400)


def _route(sim: UpstreamSimulator, request: Request) -> Response:
    method, path = request.method, request.path
    if method == "POST" and path == "/_sim/jobs":
        spec = _json_object(request)
        source = str(spec["source"])
        backend, cluster = _scope_fields(source, spec)
        sim.add_job(
            source,
            str(spec["jobId"]),
            steps_from_json(spec["steps"]),
            backend=backend,
            cluster_id=cluster,
            api_key=spec.get("apiKey"),
            collection=spec.get("collection"),
        )
        return Response.json({"ok": True, "source": source, "jobId": spec["jobId"]}, 201)
    if method == "GET" and path == "/_sim/jobs":
        return Response.json({"jobs": sim.jobs_info()})
    if method == "POST" and path.startswith("/_sim/advance/"):
        job_id = path[len("/_sim/advance/") :]
        steps = int(request.query.get("steps", "1"))
        matched = sim.advance(job_id, source=request.query.get("source"), steps=steps)
        return Response.json({"advanced": matched}, 200 if matched else 404)
    if method == "POST" and path == "/_sim/static":
        spec = _json_object(request)
        source = str(spec["source"])
        backend, cluster = _scope_fields(source, spec)
        if "ids" in spec:
            ids = [str(i) for i in spec["ids"]]
        else:
            count, prefix = int(spec["count"]), str(spec.get("prefix", "job-"))
            ids = [f"{prefix}{i:05d}" for i in range(count)]
        added = sim.add_static_jobs(
            source,
            ids,
            _step_field(spec),
            backend=backend,
            cluster_id=cluster,
            api_key=spec.get("apiKey"),
            collection=spec.get("collection"),
        )
        return Response.json({"added": added, "first": ids[:1], "last": ids[-1:]}, 201)
    if method == "POST" and path == "/_sim/set-all":
        spec = _json_object(request)
        step = _step_field(spec)
        if step is None:
            raise ValueError("set-all needs 'state' or 'step'")
        return Response.json({"changed": sim.set_all(str(spec["source"]), step)})
    if method == "GET" and path == "/_sim/requests":
        return Response.json(_requests_report(sim, request.query))
    if method == "POST" and path == "/_sim/reset":
        sim.reset()
        return Response.json({"ok": True})
    if method == "PUT" and path == "/_sim/latency":
        spec = _json_object(request)
        sim.latency_ms = float(spec.get("latencyMs", spec.get("latency_ms", 0)))
        return Response.json({"latencyMs": sim.latency_ms})
    if method == "GET" and path == "/_sim/latency":
        return Response.json({"latencyMs": sim.latency_ms})
    return Response.json({"error": f"no control route {method} {path}"}, 404)


def _requests_report(sim: UpstreamSimulator, query: Mapping[str, str]) -> dict[str, Any]:
    """`?log=false` leaves the log out; `since`/`limit` page through it."""
    if query.get("log", "true").lower() in ("0", "false", "no"):
        return sim.requests_report(log=False)
    since = int(query.get("since", "0"))
    limit = int(query["limit"]) if "limit" in query else None
    return sim.requests_report(log=True, since=since, limit=limit)


def _json_object(request: Request) -> dict[str, Any]:
    data = request.json()
    if not isinstance(data, dict):
        raise ValueError("expected a JSON object")
    return data


def _scope_fields(source: str, spec: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """`backend`/`clusterId` explicitly, or the generic `scope` (backend for Weaviate, cluster for Zilliz)."""
    backend = spec.get("backend")
    cluster = spec.get("clusterId")
    scope = spec.get("scope")
    dialect = DIALECTS.get(source)
    if scope is not None and dialect is not None:
        if dialect.scope == "backend" and backend is None:
            backend = scope
        elif dialect.scope == "cluster" and cluster is None:
            cluster = scope
    return backend, cluster


def _step_field(spec: Mapping[str, Any]) -> Step | None:
    if spec.get("step") is not None:
        return Step.from_json(spec["step"])
    if spec.get("state") is not None:
        return Step(state=JobState.from_json(spec["state"]))
    return None
