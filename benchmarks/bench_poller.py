"""Poller benchmark (`make bench`): a quiet and a busy cycle over many tracked jobs.

Setup: moto server and the upstream simulator each run in their own process (so the CPU time
measured here is the poller's alone); the simulator answers every status call after a fixed latency.
Jobs are split between the two core sources. The first cycle is the busy one (every job is seen for
the first time: one transition, one transactional write and one publish each); the next cycles are
quiet (every job polled, nothing changed). AWS calls are counted with botocore's event hooks on the
poller's own clients.

The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from jobwatch import service
from jobwatch.adapters import aws
from jobwatch.model import JobSpec
from jobwatch.poller import run_cycle, utc_now_iso
from jobwatch_devkit.harness import LocalDeployment
from jobwatch_devkit.processes import moto_process, simulator_process

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


def seed(sim_url: str, deployment: LocalDeployment) -> None:
    half = JOBS // 2
    with httpx.Client(base_url=sim_url, timeout=30) as control:
        control.post("/_sim/static", json={"source": "weaviate-export", "count": half, "prefix": "exp-",
                                           "backend": "s3", "state": {"status": "TRANSFERRING"}}).raise_for_status()
        control.post("/_sim/static", json={"source": "zilliz-import-v1", "count": JOBS - half, "prefix": "imp-",
                                           "clusterId": "in01-bench", "state": {"ready": 0.5}}).raise_for_status()
    store = service.job_store(deployment.settings)
    now = utc_now_iso()
    for i in range(half):
        store.add_job(JobSpec(source="weaviate-export", endpoint=sim_url, job_id=f"exp-{i:05d}", backend="s3"), now)
    for i in range(JOBS - half):
        store.add_job(
            JobSpec(source="zilliz-import-v1", endpoint=sim_url, job_id=f"imp-{i:05d}", cluster_id="in01-bench"), now
        )


def timed_cycle(counter: CallCounter) -> dict[str, Any]:
    before = counter.snapshot()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    report = asyncio.run(run_cycle(service.poller_deps()))
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
        [sys.executable, "-S", "-c", f"import time\nt=time.perf_counter()\n{code}\nprint(time.perf_counter()-t)"],
        capture_output=True, text=True, env=env, check=True, cwd=REPO,
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
    sim = simulator_process(latency_ms=LATENCY_MS)
    moto.start()
    sim.start()
    try:
        deployment = LocalDeployment(moto.url, None)
        concurrency = deployment.settings.poll_concurrency
        t0 = time.perf_counter()
        seed(sim.url, deployment)
        print(f"seeded {JOBS} jobs in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
        counter = CallCounter()
        busy = timed_cycle(counter)
        print(f"busy cycle: {busy['wall_s']:.2f}s {busy['report']}", file=sys.stderr)
        quiet_runs = [timed_cycle(counter) for _ in range(QUIET_CYCLES)]
        for run in quiet_runs:
            print(f"quiet cycle: {run['wall_s']:.2f}s cpu {run['cpu_s']:.2f}s calls {run['calls']}", file=sys.stderr)
        quiet = sorted(quiet_runs, key=lambda r: r["wall_s"])[len(quiet_runs) // 2]
        if quiet["report"]["polled"] != JOBS or quiet["report"]["unchanged"] != JOBS:
            print(f"quiet cycle did not poll every job unchanged: {quiet['report']}", file=sys.stderr)
            return 1
    finally:
        sim.stop()
        moto.stop()
    cold_import_s, deps_import_s = import_figures()
    bound_s = JOBS * LATENCY_MS / 1000 / concurrency
    figures = {
        "jobs": JOBS,
        "latency_ms": LATENCY_MS,
        "concurrency": concurrency,
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
