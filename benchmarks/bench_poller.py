"""Poller benchmark (`make bench`): a quiet and a busy cycle over many tracked jobs.

Setup: moto server and the upstream simulators run in their own processes (so the CPU time measured
here is the poller's alone); each simulator answers every status call after a fixed latency. A fleet
spans several endpoints (clusters): jobwatch caps polls per endpoint (`endpoint_concurrency`, 16 by
default), so the jobs are spread over `poll_concurrency / endpoint_concurrency` simulator endpoints,
which lets the poller reach its full default concurrency. Jobs are split between two
sources without a documented rate limit (weaviate-export and milvus-import): the Zilliz controller
documents 20 requests/s per endpoint, which jobwatch honours, so Zilliz jobs would measure that limit
rather than the poller.
The first cycle is the busy one (every job is seen for the first time: one transition, one write and
one publish each); the next cycles are quiet (every job polled, nothing changed). AWS calls are
counted with botocore's event hooks on the poller's own clients.

The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from jobwatch_tools.local import poller_deps

from jobwatch.adapters import aws
from jobwatch.app.poll_cycle import run_cycle
from jobwatch.domain.model import JobSpec
from jobwatch.entrypoints.wiring import CLOCK, job_store
from jobwatch_devkit.harness import LocalDeployment
from jobwatch_devkit.processes import ServerProcess, moto_process, simulator_process

REPO = Path(__file__).resolve().parents[1]
JOBS = int(os.environ.get("BENCH_JOBS", "2000"))
LATENCY_MS = float(os.environ.get("BENCH_LATENCY_MS", "50"))
QUIET_CYCLES = int(os.environ.get("BENCH_QUIET_CYCLES", "3"))
IMPORT_RUNS = int(os.environ.get("BENCH_IMPORT_RUNS", "7"))
WRITE_OPS = {"PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem"}


class CallCounter:
    """Counts AWS API calls made through the poller's clients (botocore `before-call` events)."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        for client in (aws.dynamodb(), aws.sns(), aws.secretsmanager()):
            client.meta.events.register("before-call.*.*", self._count)

    def _count(self, model: Any, **_: Any) -> None:
        self.calls[model.name] += 1

    def snapshot(self) -> Counter[str]:
        return Counter(self.calls)


def seed(sim_urls: list[str], deployment: LocalDeployment) -> None:
    """Spread the jobs over the endpoints; half Weaviate exports, half Milvus imports."""
    store = job_store(deployment.settings)
    now = CLOCK.now_iso()
    share = JOBS // len(sim_urls)
    for n, url in enumerate(sim_urls):
        count = share if n < len(sim_urls) - 1 else JOBS - share * (len(sim_urls) - 1)
        exports, imports = count // 2, count - count // 2
        with httpx.Client(base_url=url, timeout=30) as control:
            export = {"status": "TRANSFERRING"}
            control.post(
                "/_sim/static",
                json={"source": "weaviate-export", "count": exports, "prefix": f"exp-{n}-", "state": export},
            ).raise_for_status()
            control.post(
                "/_sim/static",
                json={
                    "source": "milvus-import",
                    "count": imports,
                    "prefix": f"imp-{n}-",
                    "state": {"status": "Importing", "progress": 50},
                },
            ).raise_for_status()
        for i in range(exports):
            spec = JobSpec(source="weaviate-export", endpoint=url, job_id=f"exp-{n}-{i:05d}", backend="s3")
            store.add_job(spec, now)
        for i in range(imports):
            store.add_job(JobSpec(source="milvus-import", endpoint=url, job_id=f"imp-{n}-{i:05d}"), now)


def timed_cycle(counter: CallCounter) -> dict[str, Any]:
    before = counter.snapshot()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    report = asyncio.run(run_cycle(poller_deps()))
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    calls = counter.snapshot() - before
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "report": report.counts(),
        "writes": sum(n for op, n in calls.items() if op in WRITE_OPS),
        "publishes": calls.get("Publish", 0),
        "calls": dict(calls),
    }


def import_time(code: str, extra_path: list[str]) -> float:
    """Seconds to run `code` in a fresh interpreter laid out like Lambda (no site hooks, plain sys.path)."""
    site_packages = next(p for p in sys.path if p.endswith("site-packages"))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([*extra_path, site_packages])}
    env.pop("AWS_LAMBDA_FUNCTION_NAME", None)
    out = subprocess.run(
        [
            sys.executable,
            "-S",
            "-c",
            f"import time\nt=time.perf_counter()\n{code}\nprint(time.perf_counter()-t)",
        ],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        cwd=REPO,
    )
    return float(out.stdout.strip().splitlines()[-1])


def import_figures() -> tuple[float, float]:
    layer, handler = str(REPO / "layers" / "jobwatch"), str(REPO / "functions" / "poller")
    cold, deps = [], []
    for _ in range(IMPORT_RUNS):  # interleaved so machine noise hits both alike
        deps.append(import_time("import boto3, httpx, pydantic, aws_lambda_powertools", []))
        cold.append(import_time("import app", [layer, handler]))
    return statistics.median(cold), statistics.median(deps)


def main() -> int:
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "ERROR")
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    moto = moto_process()
    moto.start()
    sims: list[ServerProcess] = []
    try:
        deployment = LocalDeployment(moto.url, None)
        settings = deployment.settings
        concurrency = settings.poll_concurrency
        endpoints = max(1, math.ceil(concurrency / settings.endpoint_concurrency))
        for _ in range(endpoints):
            sims.append(simulator_process(latency_ms=LATENCY_MS))
            sims[-1].start()
        t0 = time.perf_counter()
        seed([sim.url for sim in sims], deployment)
        print(f"seeded {JOBS} jobs in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
        counter = CallCounter()
        busy = timed_cycle(counter)
        print(f"busy cycle: {busy['wall_s']:.2f}s {busy['report']}", file=sys.stderr)
        quiet_runs = [timed_cycle(counter) for _ in range(QUIET_CYCLES)]
        for run in quiet_runs:
            print(
                f"quiet cycle: {run['wall_s']:.2f}s cpu {run['cpu_s']:.2f}s calls {run['calls']}",
                file=sys.stderr,
            )
        quiet = sorted(quiet_runs, key=lambda r: r["wall_s"])[len(quiet_runs) // 2]
        if quiet["report"]["polled"] != JOBS or quiet["report"]["unchanged"] != JOBS:
            print(f"quiet cycle did not poll every job unchanged: {quiet['report']}", file=sys.stderr)
            return 1
    finally:
        for sim in sims:
            sim.stop()
        moto.stop()
    cold_import_s, deps_import_s = import_figures()
    bound_s = JOBS * LATENCY_MS / 1000 / concurrency
    figures = {
        "jobs": JOBS,
        "latency_ms": LATENCY_MS,
        "concurrency": concurrency,
        "endpoints": endpoints,
        "endpoint_concurrency": settings.endpoint_concurrency,
        "cycle_s": round(quiet["wall_s"], 3),
        "bound_s": round(bound_s, 3),
        "cycle_over_bound": round(quiet["wall_s"] / bound_s, 3),
        "busy_cycle_s": round(busy["wall_s"], 3),
        "busy_transitions": busy["report"]["transitions"],
        "busy_publishes": busy["publishes"],
        "cpu_us_per_job": round(quiet["cpu_s"] / JOBS * 1e6, 1),
        "ddb_writes_quiet": quiet["writes"],
        "sns_publishes_quiet": quiet["publishes"],
        "cold_import_s": round(cold_import_s, 4),
        "deps_import_s": round(deps_import_s, 4),
        "cold_over_deps": round(cold_import_s / deps_import_s, 3),
    }
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
