"""The lab's knobs (`LabConfig`), the settings of the deployment under test (`lab_env`), progress output."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["LabConfig", "lab_env", "print_progress"]


@dataclass
class LabConfig:
    seed: int = 1
    rounds: int = 2
    schedules_per_round: int = 60
    simulators: int = 4
    """Upstream endpoints (one simulator each): Zilliz's documented 20 requests/s apply per endpoint."""
    read_timeout_s: float = 1.0
    """Upstream read timeout of the deployment; hangs are drawn around it. The simulators share the
    GIL with the poller's I/O threads, so on a small machine a shorter one turns good answers into
    timeouts now and then (reported as `spurious_poll_errors`)."""
    upstream_deadline_s: float = 2.0
    """Total deadline of one poll (connect, headers, whole body): what ends a slow drip. Above the
    longest hang drawn (1.5 x the read timeout), so hangs still end as timeouts."""
    slow_drip_s: float = 0.25
    """A slow fault sends one byte this often: well within the read timeout, so only the total
    deadline ends it (as TOO_SLOW)."""
    unreachable_after: int = 3
    lost_after: int = 3
    cycle_s: float = 120.0
    """Fake time per cycle (more than the outbox grace period)."""
    p_overlap: float = 0.25
    p_staggered: float = 0.4
    """Share of overlaps without a rendezvous."""
    p_crash: float = 0.2
    p_store_errors: float = 0.12
    store_error_p: float = 0.03
    p_outbox_errors: float = 0.06
    outbox_error_p: float = 0.03
    publish_error_p: float = 0.08
    p_sns_outage: float = 0.04
    """Chance per cycle that SNS goes down for 2-4 cycles."""
    p_deadline: float = 0.05
    p_notify_filter: float = 0.08
    """Share of jobs registered with a `notify.events` filter (a random subset of events)."""
    p_drain: float = 0.75
    """Chance the Slack sender keeps up between two cycles (otherwise it handles 0-2 batches only)."""
    p_sink_script: float = 0.25
    p_resend: float = 0.15
    p_twice: float = 0.12
    p_concurrent: float = 0.08
    retrack_every: int = 2
    """Every this many rounds (the 2nd, 4th, ...), jobs whose story ended are untracked and tracked
    again with a new story (0: never)."""
    p_retrack: float = 0.35
    """In such a round, the chance that a job whose story ended gets a second life."""
    settle_fault_cycles: int = 3
    max_cycles: int = 200
    routes: bool = True
    """Store the lab's routes (`destinations.lab_routes`: every destination type) in each round;
    False: none, so the deployment's defaults apply (Slack webhook and e-mail only)."""
    p_app_script: float = 0.2
    """Chance per batch of scripted Slack Web API failures (`destinations.APP_FAULTS`)."""
    p_hook_script: float = 0.15
    """Chance per batch of scripted webhook receiver failures (`destinations.HOOK_FAULTS`)."""
    bus_error_p: float = 0.08
    """Share of PutEvents calls that fail (`destinations.BUS_FAULTS`) while faults are on."""
    shards: int = 4
    """K, the deployment's `JOBWATCH_POLL_SHARDS`: jobs spread over K index shards, and fan-out cycles
    order one poll worker per shard. 1: the single-partition layout, and no fan-out."""
    endpoint_spread: int = 2
    """`JOBWATCH_ENDPOINT_SPREAD`: each endpoint's jobs sit on this many shards (its workers share its
    limits), so shards differ in size and a worker polls several endpoints."""
    p_fanout: float = 0.5
    """Share of cycles run as coordinator(s) and poll workers (the rest: one scheduled run, or two)."""
    p_coordinators: float = 0.25
    """In a fan-out cycle, the chance of two coordinators for the tick (a duplicated schedule)."""
    p_worker_crash: float = 0.35
    """In a fan-out cycle that may crash, the chance that one worker dies partway (order redelivered)."""
    p_worker_kill: float = 0.2
    """... that one worker is killed after a few polls, as at a Lambda timeout (order redelivered)."""
    p_worker_deadline: float = 0.2
    """In a fan-out cycle, the chance that one worker's remaining time runs out partway."""
    p_late_order: float = 0.25
    """In a fan-out cycle, the chance that an order of the last fan-out tick is delivered late."""
    p_scheduled_overlap: float = 0.3
    """Share of rendezvous overlaps run as two scheduled runs of one tick (leases split the shards)."""
    progress: Callable[[str], None] | None = None


def lab_env(config: LabConfig) -> dict[str, str]:
    """Settings of the deployment under test (extra_env of `LocalDeployment`)."""
    return {
        "JOBWATCH_READ_TIMEOUT_S": str(config.read_timeout_s),
        "JOBWATCH_UPSTREAM_DEADLINE_S": str(config.upstream_deadline_s),
        "JOBWATCH_CONNECT_TIMEOUT_S": "1",
        "JOBWATCH_ADAPTIVE_POLLING": "false",
        "JOBWATCH_UNREACHABLE_AFTER": str(config.unreachable_after),
        "JOBWATCH_LOST_AFTER": str(config.lost_after),
        "JOBWATCH_STALL_AFTER_S": "1000000000",
        "JOBWATCH_MAX_DURATION_S": "1000000000",
        "JOBWATCH_SLACK_MIN_INTERVAL_S": "0",
        "JOBWATCH_POLL_CONCURRENCY": "128",
        "JOBWATCH_POLL_PERIOD_S": str(config.cycle_s),
        "JOBWATCH_POLL_SHARDS": str(config.shards),
        "JOBWATCH_ENDPOINT_SPREAD": str(config.endpoint_spread),
    }


def print_progress(text: str) -> None:
    """A `LabConfig.progress` that writes to stderr."""
    print(text, file=sys.stderr, flush=True)
