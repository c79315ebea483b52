"""Poller benchmark (`make bench`): a quiet and a busy cycle over many tracked jobs.

Setup: moto server and the upstream simulators run in their own processes (so the CPU time measured
here is the poller's alone; moto with `fast_moto`'s exact speed-ups, whose index reads otherwise took
most of a quiet cycle's wall time); each simulator answers every status call after a fixed latency. A fleet
spans several endpoints (clusters): jobwatch caps polls per endpoint (`endpoint_concurrency`, 16 by
default), so the jobs are spread over `poll_concurrency / endpoint_concurrency` simulator endpoints,
which lets the poller reach its full default concurrency. Jobs are split between two
sources without a documented rate limit (weaviate-export and milvus-import): the Zilliz controller
documents 20 requests/s per endpoint, which jobwatch honours, so Zilliz jobs would measure that limit
rather than the poller.
The first cycle is the busy one (every job is seen for the first time: one transition, one write and
one publish each); the next cycles are quiet (every job polled, nothing changed). AWS calls are
counted with botocore's event hooks on the poller's own clients.

Added to those, in the same run and against the same simulators:
- a progress cycle: every job's progress moves, no phase changes (one write per job, no publish);
- the DynamoDB units each cycle consumes as DynamoDB bills them (`cost_model`), computed from the
  requests the poller actually made: the items each Query page returned, and the items before and
  after each write (scans of the table between cycles, with a client of the benchmark's own).
  moto does not report real consumed capacity (it answers constants such as 0.5 or 1 per call);
- the floor: a minimal aiohttp client (`baseline_client.py`) sending the poller's exact requests
  with the poller's pool limits, in its own process, a few rounds; `cpu_ratio` compares them;
- the money: USD per 1,000 jobs polled every minute for 30 days from the quiet cycle's figures
  and the prices cited in `cost_model` (breakdown printed before the JSON);
- the load average at start and end (2 shared cores: read the CPU figures with it).

The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import boto3
import httpx
from jobwatch_tools import cost_model
from jobwatch_tools.cost_model import IndexSpec, Item
from jobwatch_tools.local import poller_deps
from jobwatch_tools.local_stack import load_template

from benchmarks.fast_moto import fast_moto_process
from jobwatch.adapters import aws
from jobwatch.adapters.clock import utc_iso
from jobwatch.adapters.dynamodb.jobs import DynamoJobStore
from jobwatch.adapters.http.client import USER_AGENT
from jobwatch.app.poll_cycle import policy_from, run_cycle
from jobwatch.domain.model import JobSpec
from jobwatch.entrypoints.wiring import CLOCK, job_store
from jobwatch.sources import get_source
from jobwatch_devkit.harness import LocalDeployment
from jobwatch_devkit.processes import ServerProcess, simulator_process

REPO = Path(__file__).resolve().parents[1]

JOBS = int(os.environ.get("BENCH_JOBS", "2000"))
LATENCY_MS = float(os.environ.get("BENCH_LATENCY_MS", "50"))
QUIET_CYCLES = int(os.environ.get("BENCH_QUIET_CYCLES", "3"))
IMPORT_RUNS = int(os.environ.get("BENCH_IMPORT_RUNS", "7"))
BASELINE_ROUNDS = int(os.environ.get("BENCH_BASELINE_ROUNDS", "5"))
WRITE_OPS = {"PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem"}
SINGLE_WRITES = {"PutItem", "UpdateItem", "DeleteItem"}
TEMPLATE = REPO / "template.yaml"
TABLE_RESOURCE = "JobsTable"
POLLER_RESOURCE = "PollerFunction"
EXPORT_STATE = {"status": "TRANSFERRING"}
IMPORT_STATE = {"status": "Importing", "progress": 50}
EXPORT_MOVED = {"status": "TRANSFERRING", "objects": 4321}
"""Progress cycle: the exports report objects exported, the imports move on; no phase changes."""
IMPORT_MOVED = {"status": "Importing", "progress": 60}
EXPORT_MOVED_AGAIN = {"status": "TRANSFERRING", "objects": 8765}
IMPORT_MOVED_AGAIN = {"status": "Importing", "progress": 70}
Key = tuple[str, ...]
Write = tuple[str, Key, Item | None, bool]
"""One metered write: operation, item key, the item a put sent (None otherwise), and whether it succeeded."""


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


class TableModel:
    """The jobs table as template.yaml declares it: its key attributes and its global secondary indexes."""

    def __init__(self, template: Mapping[str, Any]) -> None:
        props = template["Resources"][TABLE_RESOURCE]["Properties"]
        self.keys: tuple[str, ...] = tuple(k["AttributeName"] for k in props["KeySchema"])
        self.indexes: dict[str, IndexSpec] = {}
        for gsi in props.get("GlobalSecondaryIndexes", []):
            projection = gsi["Projection"]
            projected = None
            if projection["ProjectionType"] != "ALL":
                projected = frozenset(projection.get("NonKeyAttributes", []))
            keys = tuple(k["AttributeName"] for k in gsi["KeySchema"])
            self.indexes[gsi["IndexName"]] = IndexSpec(gsi["IndexName"], keys, projected)

    def key_of(self, item: Item) -> Key:
        return tuple(str(next(iter(item[name].values()))) for name in self.keys)


def poller_memory_mb(template: Mapping[str, Any]) -> int:
    """MemorySize of the poller function, or the template's Globals default it inherits."""
    props = template["Resources"][POLLER_RESOURCE]["Properties"]
    return int(props.get("MemorySize", template.get("Globals", {}).get("Function", {})["MemorySize"]))


class DdbMeter:
    """Records what the poller's DynamoDB requests read and write (botocore hooks on its client).

    The hooks only keep references (the request's parameters, the parsed answer's items): sizes and
    units are computed after the cycle, outside its timing.
    """

    def __init__(self, client: Any, table: TableModel) -> None:
        self.table = table
        self.reads: list[tuple[str | None, bool, list[Item]]] = []
        self.writes: list[Write] = []
        self.unmodelled: Counter[str] = Counter()
        client.meta.events.register("before-parameter-build.dynamodb.*", self._keep_params)
        client.meta.events.register("after-call.dynamodb.*", self._after_call)

    def reset(self) -> None:
        self.reads, self.writes, self.unmodelled = [], [], Counter()

    @staticmethod
    def _keep_params(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["bench_params"] = params

    def _after_call(self, parsed: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        op, params = model.name, context.get("bench_params", {})
        ok = "Error" not in parsed
        if op in ("Query", "Scan"):
            consistent = bool(params.get("ConsistentRead"))
            self.reads.append((params.get("IndexName"), consistent, parsed.get("Items", [])))
        elif op == "GetItem":
            found = [parsed["Item"]] if "Item" in parsed else []
            self.reads.append((None, bool(params.get("ConsistentRead")), found))
        elif op in SINGLE_WRITES:
            item = params.get("Item")
            key = self.table.key_of(item if item is not None else params["Key"])
            self.writes.append((op, key, item, ok))
        elif op in WRITE_OPS or op.startswith(("Batch", "Transact")):
            self.unmodelled[op] += 1

    def read_units(self) -> float:
        """Each request (Query page, GetItem) on its own: the sum of its items' sizes, rounded up to 4 KB.

        Index pages are sized by the index entries (projected attributes) and are eventually consistent.
        GetItem is sized by what it returned (jobwatch's poller uses no ProjectionExpression there).
        """
        units = 0.0
        for index_name, consistent, items in self.reads:
            index = self.table.indexes.get(index_name) if index_name else None
            size = 0
            for item in items:
                entry = index.entry(item, self.table.keys) if index else None
                size += cost_model.item_size(entry if entry is not None else item)
            units += cost_model.read_units(size, consistent=consistent and index is None)
        return units

    def write_units(self, before: Mapping[Key, Item], after: Mapping[Key, Item]) -> tuple[int, bool]:
        """Units of every write of the cycle, table and indexes; and whether that figure is exact.

        The images are the table before and after the cycle: exact when each item was written at most
        once in the cycle (a quiet or progress cycle); when an item was written several times (busy
        cycle: state, then history and outbox settling), the intermediate images are not known and
        every write of it is sized with the outer two.
        """
        return write_units_of(self.table, self.writes, self.unmodelled, before, after)


def write_units_of(
    table: TableModel,
    writes: Sequence[Write],
    unmodelled: Mapping[str, int],
    before: Mapping[Key, Item],
    after: Mapping[Key, Item],
) -> tuple[int, bool]:
    """`DdbMeter.write_units` for writes recorded anywhere (`make bench-scale` ships them from its
    worker processes): every write's units, table and indexes, and whether that figure is exact."""
    indexes = list(table.indexes.values())
    per_key = Counter(key for _, key, _, _ in writes)
    units = 0
    for op, key, put_item, ok in writes:
        old = before.get(key)
        if not ok:  # a failed condition still consumes units, for the existing item's size
            units += cost_model.table_write_units(old, None)
            continue
        new = None if op == "DeleteItem" else (put_item if put_item is not None else after.get(key))
        units += cost_model.write_request_units(old, new, indexes, table.keys)
    exact = all(n == 1 for n in per_key.values()) and not unmodelled
    return units, exact


def table_images(client: Any, table_name: str, table: TableModel) -> dict[Key, Item]:
    """Every item of the table, by key (the benchmark's own client: not counted, not metered)."""
    images: dict[Key, Item] = {}
    for page in client.get_paginator("scan").paginate(TableName=table_name, ConsistentRead=True):
        for item in page.get("Items", []):
            images[table.key_of(item)] = item
    return images


def seed(sim_urls: list[str], deployment: LocalDeployment) -> None:
    """Spread the jobs over the endpoints; half Weaviate exports, half Milvus imports."""
    store = job_store(deployment.settings)
    now = CLOCK.now_iso()
    share = JOBS // len(sim_urls)
    for n, url in enumerate(sim_urls):
        count = share if n < len(sim_urls) - 1 else JOBS - share * (len(sim_urls) - 1)
        exports, imports = count // 2, count - count // 2
        with httpx.Client(base_url=url, timeout=30) as control:
            export = EXPORT_STATE
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
                    "state": IMPORT_STATE,
                },
            ).raise_for_status()
        for i in range(exports):
            spec = JobSpec(source="weaviate-export", endpoint=url, job_id=f"exp-{n}-{i:05d}", backend="s3")
            store.add_job(spec, now)
        for i in range(imports):
            store.add_job(JobSpec(source="milvus-import", endpoint=url, job_id=f"imp-{n}-{i:05d}"), now)


class OffsetClock:
    """The system clock moved `offset_s` ahead: a later cycle, without sleeping until then."""

    def __init__(self, offset_s: float) -> None:
        self.offset_s = offset_s

    def now(self) -> float:
        return time.time() + self.offset_s

    def now_iso(self) -> str:
        return utc_iso(self.now())


class Cycles:
    """Runs timed cycles and measures, outside the timing, what each one cost in AWS terms."""

    def __init__(self, counter: CallCounter, meter: DdbMeter, raw_db: Any, table_name: str) -> None:
        self.counter, self.meter, self.raw_db, self.table_name = counter, meter, raw_db, table_name
        self.images = table_images(raw_db, table_name, meter.table)

    def run(self, clock_offset_s: float = 0.0) -> dict[str, Any]:
        deps = poller_deps()
        if clock_offset_s:
            deps = dataclasses.replace(deps, clock=OffsetClock(clock_offset_s))
        before = self.counter.snapshot()
        self.meter.reset()
        cpu0, wall0 = time.process_time(), time.perf_counter()
        report = asyncio.run(run_cycle(deps))
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        calls = self.counter.snapshot() - before
        after = table_images(self.raw_db, self.table_name, self.meter.table)
        write_units, exact = self.meter.write_units(self.images, after)
        self.images = after
        return {
            "wall_s": wall,
            "cpu_s": cpu,
            "report": report.counts(),
            "writes": sum(n for op, n in calls.items() if op in WRITE_OPS),
            "publishes": calls.get("Publish", 0),
            "calls": dict(calls),
            "read_units": self.meter.read_units(),
            "write_units": write_units,
            "write_units_exact": exact,
        }


def poller_requests(raw_db: Any, table_name: str) -> list[dict[str, Any]]:
    """The requests the poller sends for the tracked jobs, in the order it reads them, built by the
    sources' own `build_request` (plus the poller client's User-Agent)."""
    store = DynamoJobStore(raw_db, table_name)
    out = []
    for job in store.pollable_jobs():
        request = get_source(job.spec.source).build_request(job.spec, None)
        out.append(
            {
                "method": request.method,
                "url": request.url,
                "params": request.params,
                "headers": {"User-Agent": USER_AGENT, **request.headers},
                "json": request.json,
            }
        )
    return out


def baseline(requests: list[dict[str, Any]], limit: int, limit_per_host: int) -> dict[str, Any]:
    """Run `baseline_client.py` in its own process over the same requests; its CPU is its own."""
    spec = {"requests": requests, "limit": limit, "limit_per_host": limit_per_host, "rounds": BASELINE_ROUNDS}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "requests.json"
        path.write_text(json.dumps(spec), encoding="utf-8")
        out = subprocess.run(
            [sys.executable, str(REPO / "benchmarks" / "baseline_client.py"), str(path)],
            capture_output=True,
            text=True,
            check=True,
        )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def move_progress(sim_urls: list[str], export: dict[str, Any], imports: dict[str, Any]) -> None:
    """Every job's progress moves, its phase stays: what the progress cycle then sees."""
    for url in sim_urls:
        with httpx.Client(base_url=url, timeout=30) as control:
            for source, state in (("weaviate-export", export), ("milvus-import", imports)):
                control.post("/_sim/set-all", json={"source": source, "state": state}).raise_for_status()


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


def cost_lines(cycle: cost_model.CycleFigures, memory_mb: int, usd: Mapping[str, float]) -> list[str]:
    """The arithmetic behind `cost_model.monthly_cost_per_1000_jobs` line by line (total left out)."""
    share = cost_model.vcpu_share(memory_mb)
    billed_s = cycle.cpu_s / share
    per_k = cost_model.MINUTES_PER_MONTH * 1000 / cycle.jobs
    return [
        f"cost: {cycle.jobs} jobs, 1 cycle/min x {cost_model.MINUTES_PER_MONTH} cycles/month, "
        "scaled to 1,000 jobs",
        f"  lambda duration: cpu {cycle.cpu_s:.3f}s / vCPU share {share:.3f} ({memory_mb} MB / "
        f"{cost_model.LAMBDA_MB_PER_VCPU} MB) = {billed_s:.3f} billed s/cycle (lower bound) x "
        f"{memory_mb / 1024:g} GB x ${cost_model.LAMBDA_ARM64_USD_PER_GB_S}/GB-s x {per_k:.0f} "
        f"= ${usd['lambda_duration']:.4f}",
        f"  lambda requests: {cycle.invocations}/cycle x ${cost_model.LAMBDA_USD_PER_REQUEST * 1e6:.2f}/M "
        f"x {per_k:.0f} = ${usd['lambda_requests']:.4f}",
        f"  ddb reads: {cycle.ddb_read_units:g} RRU/cycle x ${cost_model.DDB_USD_PER_READ_UNIT * 1e6:.3f}/M "
        f"x {per_k:.0f} = ${usd['ddb_reads']:.4f}",
        f"  ddb writes: {cycle.ddb_write_units:g} WRU/cycle x "
        f"${cost_model.DDB_USD_PER_WRITE_UNIT * 1e6:.3f}/M x {per_k:.0f} = ${usd['ddb_writes']:.4f}",
        f"  sns: {cycle.sns_publishes} publishes/cycle x ${cost_model.SNS_USD_PER_PUBLISH * 1e6:.2f}/M "
        f"x {per_k:.0f} = ${usd['sns_publishes']:.4f}",
    ]


def money(quiet: dict[str, Any], memory_mb: int) -> dict[str, Any]:
    """USD per 1,000 job-months at one cycle a minute, from the quiet cycle; breakdown on stdout."""
    cycle = cost_model.CycleFigures(
        jobs=JOBS,
        cpu_s=quiet["cpu_s"],
        ddb_read_units=quiet["read_units"],
        ddb_write_units=quiet["write_units"],
        sns_publishes=quiet["publishes"],
    )
    usd = cost_model.monthly_cost_per_1000_jobs(cycle, memory_mb, cost_model.MINUTES_PER_MONTH)
    billed_s = cycle.cpu_s / cost_model.vcpu_share(memory_mb)
    lines = [*cost_lines(cycle, memory_mb, usd), f"  total: ${usd['total']:.4f} per 1,000 job-months"]
    print("\n".join(lines))
    return {
        "usd_per_1000_job_months": round(usd["total"], 4),
        "usd_breakdown": {name: round(value, 5) for name, value in usd.items() if name != "total"},
        "lambda_memory_mb": memory_mb,
        "lambda_billed_s_per_cycle_lower_bound": round(billed_s, 4),
        "lambda_duration_assumption": (
            "billed duration >= CPU seconds / vCPU share (memory/1769 MB); I/O wait, init and "
            "Graviton-vs-this-CPU speed not included"
        ),
    }


def measure(sims: list[ServerProcess], deployment: LocalDeployment, table: TableModel) -> dict[str, Any]:
    """Every cycle and the baseline, while moto and the simulators run."""
    settings = deployment.settings
    sim_urls = [sim.url for sim in sims]
    t0 = time.perf_counter()
    seed(sim_urls, deployment)
    print(f"seeded {JOBS} jobs in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
    raw_db = boto3.client("dynamodb")  # the benchmark's own: neither counted nor metered
    cycles = Cycles(CallCounter(), DdbMeter(aws.dynamodb(), table), raw_db, settings.table)
    busy = cycles.run()
    print(f"busy cycle: {busy['wall_s']:.2f}s {busy['report']}", file=sys.stderr)
    quiet_runs = [cycles.run() for _ in range(QUIET_CYCLES)]
    for run in quiet_runs:
        print(
            f"quiet cycle: {run['wall_s']:.2f}s cpu {run['cpu_s']:.2f}s calls {run['calls']} "
            f"RRU {run['read_units']:g}",
            file=sys.stderr,
        )
    requests = poller_requests(raw_db, settings.table)
    base = baseline(requests, settings.poll_concurrency, settings.endpoint_concurrency)
    print(f"baseline: cpu {base['cpu_s']} wall {base['wall_s']} ok {base['ok']}", file=sys.stderr)
    # Counters that move without news are written at most every `progress_write_interval_s` (D40).
    # The clock is moved past that interval, so every job's write is due whatever the busy cycle took;
    # then the counters move again and a cycle at the same clock (inside the interval) writes nothing.
    offset_s = policy_from(settings).progress_write_interval_s + 1
    move_progress(sim_urls, EXPORT_MOVED, IMPORT_MOVED)
    progress = cycles.run(clock_offset_s=offset_s)
    print(
        f"progress cycle, clock +{offset_s:g}s: {progress['wall_s']:.2f}s {progress['report']}",
        file=sys.stderr,
    )
    move_progress(sim_urls, EXPORT_MOVED_AGAIN, IMPORT_MOVED_AGAIN)
    held = cycles.run(clock_offset_s=offset_s)
    print(f"progress cycle, inside the write interval: {held['report']}", file=sys.stderr)
    return {
        "busy": busy,
        "quiet_runs": quiet_runs,
        "baseline": base,
        "progress_held": held,
        "progress": progress,
        "progress_offset_s": offset_s,
    }


def checks(quiet: dict[str, Any], progress: dict[str, Any], base: dict[str, Any]) -> list[str]:
    problems = []
    if quiet["report"]["polled"] != JOBS or quiet["report"]["unchanged"] != JOBS:
        problems.append(f"quiet cycle did not poll every job unchanged: {quiet['report']}")
    if progress["report"]["updated"] != JOBS or progress["report"]["transitions"] != 0:
        problems.append(f"progress cycle did not update every job without transition: {progress['report']}")
    if any(ok != base["requests"] for ok in base["ok"]) or base["requests"] != JOBS:
        problems.append(f"baseline did not get {JOBS} good answers per round: {base['ok']}")
    return problems


def main() -> int:
    load_start = os.getloadavg()
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "ERROR")
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    template = load_template(TEMPLATE)
    table, memory_mb = TableModel(template), poller_memory_mb(template)
    moto = fast_moto_process()
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
        measured = measure(sims, deployment, table)
    finally:
        for sim in sims:
            sim.stop()
        moto.stop()
    busy, quiet_runs, base, progress = (measured[k] for k in ("busy", "quiet_runs", "baseline", "progress"))
    quiet = sorted(quiet_runs, key=lambda r: r["wall_s"])[len(quiet_runs) // 2]
    problems = checks(quiet, progress, base)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        return 1
    cold_import_s, deps_import_s = import_figures()
    bound_s = JOBS * LATENCY_MS / 1000 / concurrency
    cpu_us_per_job = quiet["cpu_s"] / JOBS * 1e6
    baseline_us = statistics.median(base["cpu_s"]) / base["requests"] * 1e6
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
        "cpu_us_per_job": round(cpu_us_per_job, 1),
        "ddb_writes_quiet": quiet["writes"],
        "sns_publishes_quiet": quiet["publishes"],
        "cold_import_s": round(cold_import_s, 4),
        "deps_import_s": round(deps_import_s, 4),
        "cold_over_deps": round(cold_import_s / deps_import_s, 3),
        "baseline_aiohttp_cpu_us_per_req": round(baseline_us, 1),
        "baseline_rounds_cpu_s": [round(c, 4) for c in base["cpu_s"]],
        "baseline_rounds_wall_s": [round(w, 3) for w in base["wall_s"]],
        "cpu_ratio": round(cpu_us_per_job / baseline_us, 3),
        "quiet_cpu_s_runs": [round(r["cpu_s"], 4) for r in quiet_runs],
        "ddb_read_units_quiet": quiet["read_units"],
        "ddb_write_units_quiet": quiet["write_units"],
        "ddb_read_units_busy": busy["read_units"],
        "ddb_write_units_busy": busy["write_units"],
        "ddb_write_units_busy_exact": busy["write_units_exact"],
        "ddb_writes_progress_inside_interval": measured["progress_held"]["writes"],
        "ddb_write_units_progress_inside_interval": measured["progress_held"]["write_units"],
        "progress_clock_offset_s": measured["progress_offset_s"],
        "progress_cycle_s": round(progress["wall_s"], 3),
        "progress_updated": progress["report"]["updated"],
        "ddb_writes_busy_progress": progress["writes"],
        "ddb_read_units_busy_progress": progress["read_units"],
        "ddb_write_units_busy_progress": progress["write_units"],
        "ddb_write_units_busy_progress_exact": progress["write_units_exact"],
        "sns_publishes_busy_progress": progress["publishes"],
        **money(quiet, memory_mb),
        "load_avg_start": [round(x, 2) for x in load_start],
        "load_avg_end": [round(x, 2) for x in os.getloadavg()],
    }
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
