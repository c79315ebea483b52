"""Fan-out benchmark (`make bench-scale`): one coordinator and W poll workers over a big fleet.

What runs, each in its own OS process (standing in for parallel Lambda invocations): moto server
(DynamoDB table from template.yaml as `make bench` builds it, plus the shard queue), one upstream
simulator per endpoint (50 ms latency), the coordinator (`entrypoints.poller.run` with a
`scheduledTime`, as the Scheduler invokes it) and W workers. A worker does what an SQS event source
mapping and the poll worker function do: receive from the shard queue (batch size `BENCH_BATCH_SIZE`,
default 1), build the Lambda SQS event, call `entrypoints.poll_worker.run`, and delete the messages
that are not in `batchItemFailures`. Every process is warm (its cold start done) before a cycle.

The fleet: `BENCH_JOBS` (20,000) running jobs, Weaviate exports and Milvus imports (sources with no
documented rate limit: Zilliz's 20 requests/s would measure that limit, not the fan-out), on endpoints
of unequal size (`scale_helpers.endpoint_plan`: one pair holds 60 % of the jobs). An endpoint's jobs sit
on `JOBWATCH_ENDPOINT_SPREAD` consecutive shards from a hash of its URL; the simulators' ports are
picked so that those ranges tile the shards evenly (with a handful of endpoints, random ports would
leave some shards with twice the jobs of others and measure that instead). Every endpoint is allowed
`BENCH_ENDPOINT_CONCURRENCY` polls in flight (default: per-worker concurrency x its sub-shards), so a
worker's share of any endpoint can fill the worker and the bound below is the worker concurrency's.

The jobs are written in bulk (BatchWriteItem of the store's own job items) as the poller leaves them
after their first poll (`scale_helpers.observed_job`: the real `decide` on the snapshot a real poll of
a sample job returns, the job id put in): a busy first cycle of 20,000 transitions through moto
(three writes and a publish each) would take minutes of moto's single-core time and measure moto.
The first cycle is timed and reported (`first_*`) and should already be quiet; the figures come from
the next `BENCH_QUIET_CYCLES` quiet cycles (the median by cycle time):
- `cycle_s`: from the coordinator's start to the last worker finishing its order;
- `bound_s` = jobs x latency / (workers x per-worker concurrency), and `cycle_ratio`; target <= 1.3;
- `cpu_us_per_job`: user+sys CPU of the coordinator's and the workers' handler calls / jobs polled;
- `jobs_polled_twice` / `jobs_missed`: status requests per job counted at the simulators within the
  cycle (must be 0 and 0);
- `ddb_writes_quiet` (job items) and `lease_writes` (one per shard and tick), DynamoDB units as
  `make bench` bills them, SQS requests, and USD per 1,000 job-months at 1-minute polling.
Adaptive polling is off (`JOBWATCH_ADAPTIVE_POLLING=false`) so every job is due in every cycle, and
`JOBWATCH_POLL_PERIOD_S` is 120 (`BENCH_POLL_PERIOD_S`) so the tick budget (period less
min(15 s, period / 4)) never defers a job on a busy machine; the cycle is timed, not the period.

The last line printed is one JSON object with the figures; a one-line summary and the cost arithmetic
go to stderr.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import multiprocessing
import os
import queue
import sys
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from multiprocessing.context import SpawnProcess
from pathlib import Path
from typing import Any

import boto3
import httpx
from jobwatch_tools import cost_model
from jobwatch_tools.local_stack import load_template

from benchmarks.bench_poller import (
    CallCounter,
    DdbMeter,
    Key,
    TableModel,
    Write,
    cost_lines,
    poller_memory_mb,
    table_images,
    write_units_of,
)
from benchmarks.fast_moto import fast_moto_process
from benchmarks.scale_helpers import (
    TARGET_RATIO,
    PlannedEndpoint,
    bound_s,
    constant_runs,
    endpoint_plan,
    expected_shard_jobs,
    first_shard,
    missed,
    observed_job,
    polled_twice,
    polls_between,
    targets_met,
)
from jobwatch.adapters import aws
from jobwatch.adapters.clock import utc_iso
from jobwatch.adapters.http.upstream import HttpUpstream
from jobwatch.app.poll_cycle import CycleReport, policy_from
from jobwatch.app.polling import poll_spec
from jobwatch.delivery.records import record_from_message
from jobwatch.domain.model import JobSpec, Snapshot
from jobwatch.domain.shards import ShardLayout
from jobwatch.entrypoints.wiring import CLOCK, job_store
from jobwatch.settings import PollerSettings
from jobwatch_devkit.harness import LocalDeployment
from jobwatch_devkit.http11 import HOST
from jobwatch_devkit.processes import ServerProcess, free_port, simulator_process

REPO = Path(__file__).resolve().parents[1]
TEMPLATE = REPO / "template.yaml"

JOBS = int(os.environ.get("BENCH_JOBS", "20000"))
LATENCY_MS = float(os.environ.get("BENCH_LATENCY_MS", "50"))
WORKERS = int(os.environ.get("BENCH_WORKERS", "4"))
SHARDS = int(os.environ.get("BENCH_SHARDS", "8"))
CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "16"))
SPREAD = int(os.environ.get("BENCH_SPREAD", "4"))
ENDPOINT_CONCURRENCY = int(
    os.environ.get("BENCH_ENDPOINT_CONCURRENCY", str(CONCURRENCY * min(SPREAD, SHARDS)))
)
BATCH_SIZE = int(os.environ.get("BENCH_BATCH_SIZE", "1"))
QUIET_CYCLES = int(os.environ.get("BENCH_QUIET_CYCLES", "2"))
PERIOD_S = float(os.environ.get("BENCH_POLL_PERIOD_S", "120"))
MAX_ENDPOINTS = int(os.environ.get("BENCH_MAX_ENDPOINTS", "12"))
VERBOSE = os.environ.get("BENCH_VERBOSE", "") not in ("", "0")
GROUP_WEIGHTS = (0.6, 0.25, 0.15)
"""Job shares of the endpoint groups: one big pair of endpoints and two smaller ones (K=8, spread 4)."""
SOURCES = (
    ("weaviate-export", "exp", {"status": "TRANSFERRING"}, "s3"),
    ("milvus-import", "imp", {"status": "Importing", "progress": 50}, None),
)
"""(source, job id prefix, the simulator's state for every job, backend): half and half per endpoint."""
SHARD_QUEUE = "jobwatch-bench-shard-orders"
VISIBILITY_TIMEOUT_S = 600
SEED_CHECKS = 3
"""Jobs per (endpoint, source) polled for real during seeding to check the seeded snapshots."""
BATCH_WRITE_MAX = 25
SQS_USD_PER_REQUEST = 0.40 / 1_000_000
"""https://aws.amazon.com/sqs/pricing/ : standard queues, $0.40 per million requests past the first
million a month (send, receive and delete are requests each; the event source mapping's empty
long polls cost the same whatever the fleet and are not counted here)."""
WORKER_FUNCTION = "PollWorkerFunction"

Result = dict[str, Any]


def settings_env(queue_url: str | None = None) -> dict[str, str]:
    env = {
        "JOBWATCH_POLL_SHARDS": str(SHARDS),
        "JOBWATCH_ENDPOINT_SPREAD": str(SPREAD),
        "JOBWATCH_POLL_CONCURRENCY": str(CONCURRENCY),
        "JOBWATCH_ENDPOINT_CONCURRENCY": str(ENDPOINT_CONCURRENCY),
        "JOBWATCH_ADAPTIVE_POLLING": "false",
        "JOBWATCH_POLL_PERIOD_S": f"{PERIOD_S:g}",
        # Over the template's own values (the local stack sets them): no log line per cycle and order.
        "POWERTOOLS_LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "ERROR"),
        "POWERTOOLS_METRICS_DISABLED": "true",
    }
    if queue_url is not None:
        env["JOBWATCH_SHARD_QUEUE_URL"] = queue_url
    return env


# -- inside the coordinator and worker processes ---------------------------------------------------


class Probe:
    """What one process's handler calls cost: DynamoDB units (`DdbMeter`), AWS calls (`CallCounter`)
    and the time spent in Query calls, all on the handler's own clients (`adapters.aws`)."""

    def __init__(self, table: TableModel) -> None:
        self.meter = DdbMeter(aws.dynamodb(), table)
        self.calls = CallCounter()
        self.sqs_calls: Counter[str] = Counter()
        self.query_s = 0.0
        db = aws.dynamodb()
        db.meta.events.register("before-call.dynamodb.Query", self._query_started)
        db.meta.events.register("after-call.dynamodb.Query", self._query_ended)
        aws.sqs().meta.events.register("before-call.sqs.*", self._sqs_call)

    def _query_started(self, context: dict[str, Any], **_: Any) -> None:
        context["bench_started"] = time.perf_counter()

    def _query_ended(self, context: dict[str, Any], **_: Any) -> None:
        self.query_s += time.perf_counter() - context.get("bench_started", time.perf_counter())

    def _sqs_call(self, model: Any, **_: Any) -> None:
        self.sqs_calls[model.name] += 1

    def take(self) -> Result:
        """The figures since the last take (units computed here, after the timed call)."""
        figures = {
            "read_units": self.meter.read_units(),
            "writes": list(self.meter.writes),
            "unmodelled": dict(self.meter.unmodelled),
            "calls": dict(self.calls.snapshot()),
            "sqs_calls": sum(self.sqs_calls.values()),
            "query_s": self.query_s,
        }
        self.meter.reset()
        self.calls.calls.clear()
        self.sqs_calls.clear()
        self.query_s = 0.0
        return figures


def coordinator_main(commands: Any, results: Any) -> None:
    """The scheduled poller, warm: one `poller.run` per tick received, until None."""
    from jobwatch.entrypoints import poller

    deps = poller.cold_start()
    probe = Probe(TableModel(load_template(TEMPLATE)))
    results.put({"role": "ready", "who": "coordinator"})
    while (tick_iso := commands.get()) is not None:
        probe.take()
        wall0, cpu0 = time.time(), time.process_time()
        try:
            report = poller.run(deps, {"scheduledTime": tick_iso}, None)
        except Exception as exc:  # the scheduled run failed: the bench reports it and stops
            results.put({"role": "error", "who": "coordinator", "error": repr(exc)[:500]})
            continue
        wall1, cpu1 = time.time(), time.process_time()
        results.put(
            {
                "role": "coordinator",
                "tick": tick_iso,
                "start": wall0,
                "end": wall1,
                "cpu_s": cpu1 - cpu0,
                "report": report.counts(),
                **probe.take(),
            }
        )


def _recording(reports: list[Result]) -> Callable[..., Any]:
    """`fanout.run_order` as `poll_worker.run` calls it, keeping each order's report for the bench
    (`poll_worker.run` returns only the partial-batch answer; it logs the counts)."""
    from jobwatch.app.fanout import ShardOrder, run_order
    from jobwatch.app.poll_cycle import PollerDeps

    async def recorded(deps: PollerDeps, order: ShardOrder, remaining: Any, holder: str) -> CycleReport:
        report = await run_order(deps, order, remaining, holder)
        reports.append({"shard": order.shard, "tick": order.tick, **report.counts()})
        return report

    return recorded


def worker_main(number: int, queue_url: str, batch_size: int, results: Any, stop: Any) -> None:
    """A poll worker behind an SQS event source mapping: receive, invoke, delete what succeeded."""
    from jobwatch.entrypoints import poll_worker

    deps = poll_worker.cold_start()
    probe = Probe(TableModel(load_template(TEMPLATE)))
    reports: list[Result] = []
    setattr(poll_worker, "run_order", _recording(reports))  # noqa: B010 - the name poll_worker.run calls
    sqs = boto3.client("sqs")  # the event source mapping's client, not the handler's
    results.put({"role": "ready", "who": f"worker-{number}"})
    while not stop.is_set():
        messages = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=batch_size,
            WaitTimeSeconds=1,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            continue
        event = {"Records": [record_from_message(dict(m)) for m in messages]}
        probe.take()
        reports.clear()
        wall0, cpu0 = time.time(), time.process_time()
        answer = poll_worker.run(deps, event, None)
        wall1, cpu1 = time.time(), time.process_time()
        failed = {failure["itemIdentifier"] for failure in answer["batchItemFailures"]}
        done = [m for m in messages if m["MessageId"] not in failed]
        for message in done:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        results.put(
            {
                "role": "worker",
                "worker": number,
                "start": wall0,
                "end": wall1,
                "cpu_s": cpu1 - cpu0,
                "orders": list(reports),
                "failed": len(failed),
                "esm_sqs_requests": 1 + len(done),
                **probe.take(),
            }
        )


# -- the main process: setup, seeding, cycles, figures --------------------------------------------


def pick_port(layout: ShardLayout, first: int, taken: set[int], tries: int = 10_000) -> int:
    """A free port whose endpoint URL starts its sub-shards at `first`."""
    for _ in range(tries):
        port = free_port()
        if port not in taken and first_shard(layout, f"http://{HOST}:{port}") == first:
            taken.add(port)
            return port
    raise RuntimeError(f"no free port maps to shard {first} of {layout.shards}")


@dataclass
class Endpoint:
    number: int
    sim: ServerProcess
    jobs: int


def start_simulators(plan: Sequence[PlannedEndpoint], layout: ShardLayout) -> list[Endpoint]:
    taken: set[int] = set()
    endpoints = []
    for number, planned in enumerate(plan):
        sim = simulator_process(port=pick_port(layout, planned.first_shard, taken), latency_ms=LATENCY_MS)
        sim.start()
        endpoints.append(Endpoint(number, sim, planned.jobs))
    return endpoints


def job_spec(source: str, url: str, job_id: str, backend: str | None) -> JobSpec:
    return JobSpec(source=source, endpoint=url, job_id=job_id, backend=backend)


JOB_ID_MARK = "<<job-id>>"


class SeedPolls:
    """Real polls through the poller's own upstream client and sources, one at a time, for seeding."""

    def __init__(self, settings: PollerSettings) -> None:
        self.loop = asyncio.new_event_loop()
        self.stack = contextlib.AsyncExitStack()
        self.upstream = self.loop.run_until_complete(
            self.stack.enter_async_context(HttpUpstream(settings, 4))
        )

    def snapshot(self, spec: JobSpec) -> Snapshot:
        return self.loop.run_until_complete(poll_spec(self.upstream, spec, None))

    def close(self) -> None:
        self.loop.run_until_complete(self.stack.aclose())
        self.loop.close()


def seen_templates(polls: SeedPolls, specs: Sequence[JobSpec]) -> list[tuple[int, int, str]]:
    """What a poll of each job returns, as runs of jobs (positions, inclusive) that share one snapshot
    once the job id is masked; a few real polls find the runs (`constant_runs`), a few more check them.
    The simulator's static jobs differ by their id and their start time (the second they were created)."""

    def masked(position: int) -> str:
        spec = specs[position]
        return polls.snapshot(spec).model_dump_json().replace(spec.job_id, JOB_ID_MARK)

    runs = constant_runs(len(specs), masked)
    for position in range(0, len(specs), max(1, len(specs) // SEED_CHECKS)):
        template = next(t for low, high, t in runs if low <= position <= high)
        if masked(position) != template:
            raise RuntimeError(f"seeded snapshot of {specs[position].job_id} differs from a real poll")
    return runs


def seed(endpoints: Sequence[Endpoint], settings: PollerSettings, raw_db: Any) -> list[str]:
    """Static jobs on the simulators; the same jobs in the table as their first poll leaves them,
    written in bulk. Returns the job ids."""
    specs: list[JobSpec] = []
    kinds: list[list[JobSpec]] = []
    for endpoint in endpoints:
        counts = (endpoint.jobs // 2, endpoint.jobs - endpoint.jobs // 2)
        with httpx.Client(base_url=endpoint.sim.url, timeout=60) as control:
            for (source, prefix, state, backend), count in zip(SOURCES, counts, strict=True):
                answer = control.post(
                    "/_sim/static",
                    json={
                        "source": source,
                        "count": count,
                        "prefix": f"{prefix}-{endpoint.number}-",
                        "state": state,
                    },
                )
                answer.raise_for_status()
                ids = [f"{prefix}-{endpoint.number}-{i:05d}" for i in range(count)]
                kinds.append([job_spec(source, endpoint.sim.url, job_id, backend) for job_id in ids])
    polls = SeedPolls(settings)
    try:
        runs = [seen_templates(polls, kind) for kind in kinds]
    finally:
        polls.close()
    store = job_store(settings)
    policy = policy_from(settings)
    now_iso, now_s = CLOCK.now_iso(), CLOCK.now()
    batch: list[dict[str, Any]] = []
    for kind, kind_runs in zip(kinds, runs, strict=True):
        for low, high, template in kind_runs:
            for spec in kind[low : high + 1]:
                seen = Snapshot.model_validate_json(template.replace(JOB_ID_MARK, spec.job_id))
                job = observed_job(spec, seen, now_iso, now_s, policy)
                batch.append({"PutRequest": {"Item": store._job_item(job)}})
                specs.append(spec)
                if len(batch) == BATCH_WRITE_MAX:
                    batch_write(raw_db, settings.table, batch)
                    batch = []
    if batch:
        batch_write(raw_db, settings.table, batch)
    return [spec.job_id for spec in specs]


def batch_write(raw_db: Any, table: str, requests: list[dict[str, Any]]) -> None:
    pending = {table: requests}
    while pending:
        pending = raw_db.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}


def simulator_counts(endpoints: Sequence[Endpoint]) -> dict[str, int]:
    """Every simulator's cumulative status requests per job id (ids are unique across endpoints)."""
    counts: dict[str, int] = {}
    for endpoint in endpoints:
        answer = httpx.get(f"{endpoint.sim.url}/_sim/requests", params={"log": "false"}, timeout=60)
        answer.raise_for_status()
        counts.update(answer.json()["byJob"])
    return counts


def cpu_of(pids: Sequence[int | None]) -> float | None:
    """user+sys seconds of these processes so far, from /proc (None where there is no /proc)."""
    total = 0
    try:
        for pid in pids:
            if pid is None:
                continue
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    except OSError:
        return None
    return total / os.sysconf("SC_CLK_TCK")


class Fleet:
    """The coordinator and the workers as processes, and the cycles they run."""

    def __init__(self, queue_url: str) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.commands: Any = ctx.Queue()
        self.results: Any = ctx.Queue()
        self.stop = ctx.Event()
        self.processes: list[SpawnProcess] = [
            ctx.Process(target=coordinator_main, args=(self.commands, self.results), name="coordinator")
        ]
        for number in range(WORKERS):
            self.processes.append(
                ctx.Process(
                    target=worker_main,
                    args=(number, queue_url, BATCH_SIZE, self.results, self.stop),
                    name=f"worker-{number}",
                )
            )
        self.last_tick = 0

    def start(self, timeout_s: float = 120.0) -> None:
        for process in self.processes:
            process.start()
        ready = 0
        while ready < len(self.processes):
            message = self.results.get(timeout=timeout_s)
            ready += message["role"] == "ready"

    def pids(self) -> list[int | None]:
        return [process.pid for process in self.processes]

    def close(self) -> None:
        self.stop.set()
        self.commands.put(None)
        for process in self.processes:
            process.join(15)
            if process.is_alive():
                process.terminate()
                process.join(5)

    def cycle(self) -> tuple[Result, list[Result]]:
        """One tick: the coordinator's result and every worker batch of this tick's orders."""
        tick = math.floor(time.time())
        while tick <= self.last_tick:  # leases need each tick later than the last
            time.sleep(0.05)
            tick = math.floor(time.time())
        self.last_tick = tick
        self.commands.put(utc_iso(tick))
        coordinator: Result | None = None
        batches: list[Result] = []
        done: set[int] = set()
        deadline = time.monotonic() + PERIOD_S + 60
        while coordinator is None or len(done) < SHARDS:
            try:
                result = self.results.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                raise RuntimeError(
                    f"cycle did not finish: coordinator {'done' if coordinator else 'running'}, "
                    f"{len(done)} of {SHARDS} shards done"
                ) from None
            if result["role"] == "error":
                raise RuntimeError(f"{result['who']} failed: {result['error']}")
            if result["role"] == "coordinator":
                coordinator = result
            elif result["role"] == "worker":
                mine = [order for order in result["orders"] if order["tick"] == tick]
                if VERBOSE:
                    shards = [order["shard"] for order in result["orders"]]
                    print(
                        f"  worker {result['worker']}: shards {shards} "
                        f"in {result['end'] - result['start']:.2f}s "
                        f"(index reads {result['query_s']:.2f}s, cpu {result['cpu_s']:.2f}s)",
                        file=sys.stderr,
                    )
                if mine or not result["orders"]:
                    batches.append(result)
                done.update(order["shard"] for order in mine)
        return coordinator, batches


def measure_cycle(
    fleet: Fleet,
    endpoints: Sequence[Endpoint],
    active: Sequence[str],
    helper_pids: Sequence[int | None],
) -> Result:
    """One cycle with what it cost; the simulators' counters are read just before and after it."""
    before = simulator_counts(endpoints)
    helpers0 = cpu_of(helper_pids)
    coordinator, batches = fleet.cycle()
    helpers1 = cpu_of(helper_pids)
    polls = polls_between(before, simulator_counts(endpoints))
    orders = [order for batch in batches for order in batch["orders"]]
    writes: list[Write] = [
        (op, tuple(key), item, ok)
        for batch in [coordinator, *batches]
        for op, key, item, ok in batch["writes"]
    ]
    return {
        "coordinator": coordinator,
        "batches": batches,
        "orders": orders,
        "cycle_s": max(batch["end"] for batch in batches) - coordinator["start"],
        "first_order_s": min(batch["start"] for batch in batches) - coordinator["start"],
        "cpu_s": coordinator["cpu_s"] + sum(batch["cpu_s"] for batch in batches),
        "polled": sum(order["polled"] for order in orders),
        "jobs_polled_twice": polled_twice(polls),
        "jobs_missed": missed(active, polls),
        "upstream_requests": sum(polls.values()),
        "writes": writes,
        "job_writes": sum(1 for _, key, _, ok in writes if key[0].startswith("JOB#")),
        "lease_writes": sum(1 for _, key, _, ok in writes if key[0].startswith("POLL-LEASE#") and ok),
        "unmodelled": sum((Counter(b["unmodelled"]) for b in [coordinator, *batches]), Counter()),
        "read_units": coordinator["read_units"] + sum(batch["read_units"] for batch in batches),
        "publishes": sum(b["calls"].get("Publish", 0) for b in [coordinator, *batches]),
        "sqs_requests": coordinator["sqs_calls"] + sum(batch["esm_sqs_requests"] for batch in batches),
        "helpers_cpu_s": None if helpers0 is None or helpers1 is None else helpers1 - helpers0,
        "load_avg": [round(x, 2) for x in os.getloadavg()],
    }


def add_write_units(
    cycle: Result, table: TableModel, before: Mapping[Key, Any], after: Mapping[Key, Any]
) -> None:
    units, exact = write_units_of(table, cycle["writes"], cycle["unmodelled"], before, after)
    cycle["write_units"], cycle["write_units_exact"] = units, exact


def money(cycle: Result, memory_mb: int) -> Result:
    """USD per 1,000 job-months at one cycle a minute, from a quiet cycle; the arithmetic on stderr.
    Lambda is billed as `make bench` bills it (CPU / vCPU share: a lower bound), for the coordinator
    and one invocation per shard order, at the poller's memory."""
    invocations = 1 + len(cycle["batches"])
    figures = cost_model.CycleFigures(
        jobs=JOBS,
        cpu_s=cycle["cpu_s"],
        ddb_read_units=cycle["read_units"],
        ddb_write_units=cycle["write_units"],
        sns_publishes=cycle["publishes"],
        invocations=invocations,
    )
    usd = cost_model.monthly_cost_per_1000_jobs(figures, memory_mb, cost_model.MINUTES_PER_MONTH)
    per_k = cost_model.MINUTES_PER_MONTH * 1000 / JOBS
    sqs_usd = cycle["sqs_requests"] * SQS_USD_PER_REQUEST * per_k
    total = usd["total"] + sqs_usd
    lines = [
        *cost_lines(figures, memory_mb, usd),
        f"  sqs: {cycle['sqs_requests']} requests/cycle (orders sent, received, deleted) x "
        f"${SQS_USD_PER_REQUEST * 1e6:.2f}/M x {per_k:.0f} = ${sqs_usd:.4f}",
        f"  total: ${total:.4f} per 1,000 job-months",
    ]
    print("\n".join(lines), file=sys.stderr)
    breakdown = {name: round(value, 5) for name, value in usd.items() if name != "total"}
    return {
        "usd_per_1000_job_months": round(total, 4),
        "usd_breakdown": {**breakdown, "sqs_requests": round(sqs_usd, 5)},
        "lambda_memory_mb": memory_mb,
        "lambda_invocations_per_cycle": invocations,
        "lambda_duration_assumption": (
            "billed duration >= CPU seconds / vCPU share (memory/1769 MB), summed over the coordinator "
            "and the workers; I/O wait, init and Graviton-vs-this-CPU speed not included"
        ),
    }


def worker_memory_mb(template: Mapping[str, Any]) -> int:
    """The poll worker's MemorySize if the template has the function yet, else the poller's."""
    props = template["Resources"].get(WORKER_FUNCTION, {}).get("Properties", {})
    if "MemorySize" in props:
        return int(props["MemorySize"])
    return poller_memory_mb(template)


def describe(label: str, cycle: Result) -> str:
    per_order = sorted(cycle["orders"], key=lambda order: order["shard"])
    shard_jobs = [order["jobs"] for order in per_order]
    return (
        f"{label}: {cycle['cycle_s']:.2f}s (first order after {cycle['first_order_s']:.2f}s), "
        f"cpu {cycle['cpu_s']:.2f}s, polled {cycle['polled']}, twice {cycle['jobs_polled_twice']}, "
        f"missed {cycle['jobs_missed']}, job writes {cycle['job_writes']}, leases {cycle['lease_writes']}, "
        f"shard jobs {shard_jobs}, load {cycle['load_avg']}"
    )


def run_all(table: TableModel) -> tuple[list[Endpoint], Result, list[Result]]:
    """Start everything, seed, run the first and the quiet cycles, stop everything."""
    layout = ShardLayout(SHARDS, SPREAD)
    plan = endpoint_plan(JOBS, SHARDS, SPREAD, GROUP_WEIGHTS, MAX_ENDPOINTS)
    moto = fast_moto_process()
    moto.start()
    endpoints: list[Endpoint] = []
    fleet: Fleet | None = None
    try:
        t0 = time.perf_counter()
        endpoints = start_simulators(plan, layout)
        LocalDeployment(moto.url, None, extra_env=settings_env())  # the stack, and its environment set
        raw_db = boto3.client("dynamodb")  # the benchmark's own: neither counted nor metered
        queue_url = boto3.client("sqs").create_queue(
            QueueName=SHARD_QUEUE, Attributes={"VisibilityTimeout": str(VISIBILITY_TIMEOUT_S)}
        )["QueueUrl"]
        os.environ.update(settings_env(queue_url))
        settings = PollerSettings.from_env()
        active = seed(endpoints, settings, raw_db)
        print(
            f"seeded {len(active)} jobs on {len(endpoints)} endpoints "
            f"({', '.join(str(e.jobs) for e in endpoints)}) in {time.perf_counter() - t0:.1f}s",
            file=sys.stderr,
        )
        fleet = Fleet(queue_url)
        fleet.start()
        helper_pids = [moto.pid, *(endpoint.sim.pid for endpoint in endpoints)]
        first = measure_cycle(fleet, endpoints, active, helper_pids)
        print(describe("first cycle", first), file=sys.stderr)
        images = table_images(raw_db, settings.table, table)
        quiet = []
        for number in range(QUIET_CYCLES):
            cycle = measure_cycle(fleet, endpoints, active, helper_pids)
            after = table_images(raw_db, settings.table, table)
            add_write_units(cycle, table, images, after)
            images = after
            print(describe(f"quiet cycle {number + 1}", cycle), file=sys.stderr)
            quiet.append(cycle)
    finally:
        if fleet is not None:
            fleet.close()
        for endpoint in endpoints:
            endpoint.sim.stop()
        moto.stop()
    return endpoints, first, quiet


def figures(endpoints: Sequence[Endpoint], first: Result, quiet: Sequence[Result], memory_mb: int) -> Result:
    cycle = sorted(quiet, key=lambda c: c["cycle_s"])[len(quiet) // 2]
    bound = bound_s(JOBS, LATENCY_MS, WORKERS, CONCURRENCY)
    orders = sorted(cycle["orders"], key=lambda order: order["shard"])
    batches = sorted(cycle["batches"], key=lambda b: min((o["shard"] for o in b["orders"]), default=-1))
    per_worker = Counter(batch["worker"] for batch in cycle["batches"])
    met = targets_met(cycle["cycle_s"], bound, cycle["jobs_polled_twice"], cycle["jobs_missed"])
    return {
        "jobs": JOBS,
        "shards": SHARDS,
        "workers": WORKERS,
        "per_worker_concurrency": CONCURRENCY,
        "latency_ms": LATENCY_MS,
        "endpoint_spread": SPREAD,
        "endpoint_concurrency": ENDPOINT_CONCURRENCY,
        "endpoints": len(endpoints),
        "endpoint_jobs": [endpoint.jobs for endpoint in endpoints],
        "batch_size": BATCH_SIZE,
        "poll_period_s": PERIOD_S,
        "cycle_s": round(cycle["cycle_s"], 3),
        "bound_s": round(bound, 3),
        "cycle_ratio": round(cycle["cycle_s"] / bound, 3),
        "target_ratio": TARGET_RATIO,
        "targets_met": met,
        "quiet_cycles_s": [round(c["cycle_s"], 3) for c in quiet],
        "first_order_s": round(cycle["first_order_s"], 3),
        "coordinator_s": round(cycle["coordinator"]["end"] - cycle["coordinator"]["start"], 3),
        "jobs_polled": cycle["polled"],
        "cpu_s": round(cycle["cpu_s"], 3),
        "cpu_us_per_job": round(cycle["cpu_s"] / max(1, cycle["polled"]) * 1e6, 1),
        "coordinator_cpu_s": round(cycle["coordinator"]["cpu_s"], 3),
        "helpers_cpu_s": None if cycle["helpers_cpu_s"] is None else round(cycle["helpers_cpu_s"], 2),
        "jobs_polled_twice": cycle["jobs_polled_twice"],
        "jobs_missed": cycle["jobs_missed"],
        "upstream_requests": cycle["upstream_requests"],
        "shard_jobs": [order["jobs"] for order in orders],
        "shard_expected_jobs": [
            round(x)
            for x in expected_shard_jobs(
                endpoint_plan(JOBS, SHARDS, SPREAD, GROUP_WEIGHTS, MAX_ENDPOINTS), SHARDS, SPREAD
            )
        ],
        "shards_skipped": sum(order["shards_skipped"] for order in cycle["orders"]),
        "deferred": sum(order["deferred"] for order in cycle["orders"]),
        "orders_per_worker": [per_worker.get(n, 0) for n in range(WORKERS)],
        "batch_s": [round(b["end"] - b["start"], 3) for b in batches],
        "batch_query_s": [round(b["query_s"], 3) for b in batches],
        "ddb_writes_quiet": cycle["job_writes"],
        "lease_writes": cycle["lease_writes"],
        "ddb_read_units_quiet": cycle["read_units"],
        "ddb_write_units_quiet": cycle["write_units"],
        "ddb_write_units_quiet_exact": cycle["write_units_exact"],
        "sns_publishes_quiet": cycle["publishes"],
        "sqs_requests_per_cycle": cycle["sqs_requests"],
        "first_cycle_s": round(first["cycle_s"], 3),
        "first_cycle_polled": first["polled"],
        "first_cycle_job_writes": first["job_writes"],
        "first_cycle_polled_twice": first["jobs_polled_twice"],
        "first_cycle_missed": first["jobs_missed"],
        **money(cycle, memory_mb),
        "load_avg": cycle["load_avg"],
    }


def main() -> int:
    load_start = os.getloadavg()
    template = load_template(TEMPLATE)
    table = TableModel(template)
    wall0 = time.perf_counter()
    endpoints, first, quiet = run_all(table)
    result = figures(endpoints, first, quiet, worker_memory_mb(template))
    result["load_avg_start"] = [round(x, 2) for x in load_start]
    result["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
    result["bench_wall_s"] = round(time.perf_counter() - wall0, 1)
    print(
        f"bench-scale: {JOBS} jobs, {SHARDS} shards, {WORKERS} workers x {CONCURRENCY}: "
        f"cycle {result['cycle_s']:.2f}s vs bound {result['bound_s']:.2f}s "
        f"(x{result['cycle_ratio']:.2f}, target <= {TARGET_RATIO}); "
        f"cpu {result['cpu_us_per_job']:.0f} us/job; "
        f"polled twice {result['jobs_polled_twice']}, missed {result['jobs_missed']}; quiet job writes "
        f"{result['ddb_writes_quiet']} (+{result['lease_writes']} leases); "
        f"${result['usd_per_1000_job_months']:.4f} per 1,000 job-months; load {result['load_avg']}; "
        f"targets {'met' if result['targets_met'] else 'NOT met'}",
        file=sys.stderr,
    )
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
