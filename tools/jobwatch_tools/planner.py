"""Capacity planner: how a fleet fits the poll cycle, what limits it, and what it costs (`jobwatch plan`).

A model, not a measurement. Its inputs are the figures `make bench` measures (CPU per polled job,
DynamoDB index entry size) and the limits jobwatch and its upstreams declare (per-endpoint
concurrency, documented request rates); docs/scaling.md explains each line and shows the plans for
1k, 100k and 1M jobs. Pure arithmetic: no I/O, so it is unit-tested on hand-worked examples.

What it answers today: whether one poller invocation keeps up (jobwatch runs one per tick; a cycle
stops starting polls before the next tick, D39), which endpoints cannot be polled every period
whatever the compute (their documented rate), how many index partitions the reads need, and what
a fan-out to W workers (issue 14, not built yet) would need and cost.
"""

from __future__ import annotations

import math
import random
from dataclasses import asdict, dataclass, field
from typing import Any

from jobwatch.domain.cadence import tick_margin_s
from jobwatch.settings import PollerSettings
from jobwatch.sources import get_source
from jobwatch_tools import cost_model

PARTITION_READ_UNITS_PER_S = 3000
"""DynamoDB's per-partition read limit (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/
bp-partition-key-design.html): a GSI partition (one `pollShard` value) reads at most this."""
EVENTUAL_READ_BYTES_PER_UNIT = 2 * cost_model.READ_UNIT_BYTES
"""An eventually consistent read unit covers 8 KB (half a unit per 4 KB)."""
HEADROOM = 0.8
"""Workers are sized to finish within this share of the budget: a noisy neighbour or a slow
endpoint must not push a cycle past its tick."""
FLEET_SOURCES = ("weaviate-export", "zilliz-import-v1", "milvus-import", "pinecone-import")
"""What a synthetic fleet's endpoints run, in turn (Zilliz with its documented 20 requests/s)."""


@dataclass(frozen=True)
class Assumptions:
    """The model's inputs; the defaults are this project's measured or configured figures."""

    period_s: float = 60.0
    """The schedule's period (`PollPeriodMinutes`)."""
    memory_mb: int = 512
    """The poller's memory in the template: its share of a vCPU follows from it."""
    cpu_us_per_job: float = 950.0
    """CPU per polled job in a quiet cycle: `make bench`, median on the build machine (closing note)."""
    latency_s: float = 0.05
    """Upstream answer time (the bench's simulated 50 ms)."""
    poll_concurrency: int = PollerSettings.model_fields["poll_concurrency"].default
    endpoint_concurrency: int = PollerSettings.model_fields["endpoint_concurrency"].default
    upstream_deadline_s: float = PollerSettings.model_fields["upstream_deadline_s"].default
    index_entry_bytes: int = 950
    """A running job's entry in the `pollable` index (D42 trimmed defaults out of it)."""
    index_read_window_s: float = 10.0
    """How long reading the index may take at the start of a cycle."""

    @property
    def budget_s(self) -> float:
        """Time a cycle may start polls in: the period less the tick margin (D39)."""
        return self.period_s - tick_margin_s(self.upstream_deadline_s, self.period_s)

    @property
    def vcpu(self) -> float:
        return cost_model.vcpu_share(self.memory_mb)


@dataclass(frozen=True)
class Endpoint:
    name: str
    source: str
    jobs: int

    @property
    def rps(self) -> float | None:
        return get_source(self.source).max_requests_per_second


@dataclass(frozen=True)
class EndpointLimit:
    """An endpoint whose jobs cannot all be polled within one cycle, whatever the compute."""

    name: str
    jobs: int
    seconds: float
    """Polling all its jobs takes this long: its concurrency or its documented rate bounds it."""
    every_periods: int
    """So each of its jobs is polled every this many periods at best."""


@dataclass
class Plan:
    jobs: int
    endpoints: int
    budget_s: float
    cpu_s: float
    """CPU a cycle needs in all (jobs x CPU per job)."""
    one_invocation_s: float
    """Modelled cycle of one invocation: its CPU at the function's vCPU share, its concurrency, or
    its slowest endpoint, whichever is longest."""
    fits_one_invocation: bool
    workers: int
    """Invocations a cycle needs so each finishes within `HEADROOM` of the budget (1: one is enough)."""
    index_shards: int
    """`pollShard` values needed so no index partition reads past its limit in the read window."""
    fanned_out_s: float
    """Modelled cycle with `workers` invocations (endpoint limits apart)."""
    limited_endpoints: list[EndpointLimit] = field(default_factory=list)
    usd_per_1000_job_months: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def synthetic_fleet(jobs: int, endpoints: int, seed: int = 1) -> list[Endpoint]:
    """`jobs` spread over `endpoints` the way fleets are: a few big endpoints, a long tail (weights
    1/rank^1.1), sources in turn from `FLEET_SOURCES`. Deterministic for a seed."""
    endpoints = max(1, min(endpoints, jobs))
    weights = [1 / (rank + 1) ** 1.1 for rank in range(endpoints)]
    total = sum(weights)
    counts = [max(1, int(jobs * weight / total)) for weight in weights]
    rng = random.Random(seed)
    while sum(counts) < jobs:
        counts[rng.randrange(endpoints)] += 1
    while sum(counts) > jobs:
        biggest = counts.index(max(counts))
        counts[biggest] -= 1
    return [
        Endpoint(f"endpoint-{rank:05d}", FLEET_SOURCES[rank % len(FLEET_SOURCES)], count)
        for rank, count in enumerate(counts)
    ]


def endpoint_seconds(endpoint: Endpoint, assume: Assumptions) -> float:
    """Time to poll all of one endpoint's jobs: its concurrency slots, or its documented rate."""
    by_slots = endpoint.jobs * assume.latency_s / assume.endpoint_concurrency
    by_rate = endpoint.jobs / endpoint.rps if endpoint.rps else 0.0
    return max(by_slots, by_rate)


def plan(fleet: list[Endpoint], assume: Assumptions | None = None) -> Plan:
    assume = assume or Assumptions()
    jobs = sum(endpoint.jobs for endpoint in fleet)
    budget = assume.budget_s
    cpu_s = jobs * assume.cpu_us_per_job / 1e6
    compute_s = max(cpu_s / assume.vcpu, jobs * assume.latency_s / assume.poll_concurrency)
    slowest = max((endpoint_seconds(endpoint, assume) for endpoint in fleet), default=0.0)
    one_invocation = max(compute_s, slowest)
    workers = max(1, math.ceil(compute_s / (budget * HEADROOM)))
    limited = [
        EndpointLimit(e.name, e.jobs, round(seconds, 1), math.ceil(seconds / budget))
        for e in fleet
        if (seconds := endpoint_seconds(e, assume)) > budget
    ]
    read_units = jobs * assume.index_entry_bytes / EVENTUAL_READ_BYTES_PER_UNIT
    shards = max(workers, math.ceil(read_units / (PARTITION_READ_UNITS_PER_S * assume.index_read_window_s)))
    return Plan(
        jobs=jobs,
        endpoints=len(fleet),
        budget_s=round(budget, 1),
        cpu_s=round(cpu_s, 2),
        one_invocation_s=round(one_invocation, 1),
        fits_one_invocation=one_invocation <= budget,
        workers=workers,
        index_shards=shards,
        fanned_out_s=round(compute_s / workers, 1),
        limited_endpoints=sorted(limited, key=lambda limit: -limit.every_periods),
        usd_per_1000_job_months=_cost(jobs, cpu_s, read_units, workers, assume),
    )


def _cost(jobs: int, cpu_s: float, read_units: float, workers: int, assume: Assumptions) -> dict[str, float]:
    """Polling only (a quiet fleet: no transitions), every period for 30 days, per 1,000 jobs.

    Each invocation is billed at least its CPU time at the vCPU share; the upstream wait of a
    CPU-bound cycle overlaps its CPU, so the longer of the two is what runs."""
    billed_s = max(cpu_s / assume.vcpu, jobs * assume.latency_s / assume.poll_concurrency)
    cycle = cost_model.CycleFigures(
        jobs=jobs,
        cpu_s=billed_s * assume.vcpu,
        ddb_read_units=read_units,
        ddb_write_units=0.0,
        sns_publishes=0,
        invocations=workers,
    )
    cycles = int(cost_model.MINUTES_PER_MONTH * 60 / assume.period_s)
    figures = cost_model.monthly_cost_per_1000_jobs(cycle, assume.memory_mb, cycles)
    return {name: round(value, 4) for name, value in figures.items()}


def describe(result: Plan, assume: Assumptions) -> list[str]:
    """The plan as lines for a terminal."""
    cost = result.usd_per_1000_job_months
    lines = [
        f"fleet: {result.jobs:,} jobs on {result.endpoints:,} endpoints, polled every {assume.period_s:g} s "
        f"(a cycle may start polls for {result.budget_s:g} s)",
        f"CPU per cycle: {result.cpu_s:,.1f} s ({assume.cpu_us_per_job:g} us/job); one invocation at "
        f"{assume.memory_mb} MB has {assume.vcpu:.2f} vCPU",
        f"one invocation: about {result.one_invocation_s:,.1f} s per cycle -> "
        + ("fits" if result.fits_one_invocation else "does NOT fit (jobs are left for the next cycles, D39)"),
        f"fan-out: {result.workers} worker(s), about {result.fanned_out_s:,.1f} s each; "
        f"{result.index_shards} pollShard value(s) for the index reads",
        f"cost per 1,000 job-months (quiet polling): ${cost.get('total', 0.0):.3f} "
        f"(Lambda ${cost.get('lambda_duration', 0.0):.3f}, requests "
        f"${cost.get('lambda_requests', 0.0):.4f}, DynamoDB reads ${cost.get('ddb_reads', 0.0):.3f})",
    ]
    if result.limited_endpoints:
        lines.append(f"endpoints slower than one cycle ({len(result.limited_endpoints)}), worst first:")
        for limit in result.limited_endpoints[:5]:
            lines.append(
                f"  {limit.name}: {limit.jobs:,} jobs need {limit.seconds:,.1f} s -> "
                f"each polled every {limit.every_periods} periods at best"
            )
    return lines
