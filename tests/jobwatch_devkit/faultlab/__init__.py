"""Fault-injection engine: random job stories against the real poller and notifier, then invariants.

This is the proof of issue 3 ("nothing lost, nothing doubled, nothing false"). One *round* registers
N random *schedules* (one job each) in one `LocalDeployment` (moto server + upstream simulators + Slack
sink), runs poll cycles through `jobwatch.poller.run_cycle` until every schedule's story is told and
every job has settled, drains the Slack queue through `jobwatch.delivery.engine.deliver_batch` in between, and
then checks what every channel received against ground truth computed from the scripts alone.

Schedules (`schedules.make_schedule`)
    A source (mostly weaviate-export and zilliz-import-v1; also weaviate-backup, zilliz-import-v2,
    milvus-import, pinecone-import) and a script of simulator steps: a random walk of upstream states
    (progress moving inside a phase, phases going back and forth, ending in a terminal state or not, or
    in a run of "not found" that must end as LOST), with *gaps* of upstream faults between states (HTTP
    5xx, 429 with and without Retry-After (1 s is waited out, 30 s rests the endpoint for the rest of
    the cycle, 300 s also holds the job past the next cycles), HTML pages, truncated JSON, arrays,
    schema drift, API error codes in HTTP 200, hangs and slow answers around the read timeout, resets,
    disconnects, 401/403 and vendor auth codes, 404 / "job does not exist"), undocumented statuses
    sprinkled anywhere, and slow but successful answers. A few jobs carry a `notify.events` filter (a
    random subset of events). Jobs are spread over several simulators (endpoints), because Zilliz's
    documented 20 requests/s apply per endpoint and would otherwise pace a whole round.

    Every step is *held*: the simulator serves it to every request until the engine advances the job.
    The engine advances a job after a cycle in which it was polled and its result was recorded, so an
    upstream state lasts at least one complete cycle, as real states last minutes. This is what makes
    ground truth exact although overlapping runs poll a job twice and a crash abandons a cycle halfway:
    both runs of an overlap see the same state, and after a crash (or an injected DynamoDB error for
    that job) the same state is served again to the next cycle instead of being skipped unseen.

Ground truth (`schedules.expected_story`)
    Computed from the script with the deployment's thresholds: the first observation (QUEUED, STARTED,
    or a terminal event), each later phase change, LOST after `lost_after` not-found answers in a row,
    one UNREACHABLE (AUTH_FAILED for auth errors) when `unreachable_after` polls in a row failed and one
    RECOVERED at the next successful known state, minus what the job's notify filter drops. Faults and
    undocumented statuses alone produce nothing.
    Poll-error counting is per *poll*, not per upstream step, so an overlap without rendezvous or a cycle
    repeated after a crash may count one step twice (the store says so: "only brings an alert one poll
    earlier"). Gaps are therefore generated so that this cannot change the outcome: a gap holds exactly
    one fault (at most 2 counted < unreachable_after = 3), or a long run of faults of a single class
    (>= unreachable_after: an alert of a known kind, whenever it fires inside the gap), and a not-found
    run is either one step or >= lost_after steps right after a good state (LOST, whenever it fires).
    The cycle planner keeps the multiplicity of any step at 2 or less: a cycle after one that left jobs
    unadvanced (crash, aborted cycle, injected store error) is clean, and staggered overlaps carry no
    crash and no store error. With that, the whole event sequence of every job, health events included,
    is known exactly in advance. STALLED / RESUMED / OVERDUE are kept out by huge thresholds.

Faults besides upstream ones (per cycle, from the seed)
    - SNS: a publisher wrapper fails before the real publish, or *after* it (SNS accepted it, the caller
      saw an error): the outbox must republish, SNS subscribers then see it twice and Slack must dedupe.
      Outages: every publish fails for 2-4 cycles, so a job owes several transitions at once.
    - Crashes: `Crash` (a BaseException, so no `except Exception` in jobwatch swallows it) raised at the
      k-th fault point the run reaches (k uniform over the points of the previous cycle): before/after a
      state write, a health write, a publish, settling an outbox entry, reading the outbox or the
      pollable jobs, so in the middle of a batch as often as not. Once crashed, every later call of that
      run raises too (the process is gone); the next cycles must recover everything from the outbox.
    - DynamoDB errors seen by the caller, before the write or after it was applied, on state/health
      writes (one job affected) and on outbox bookkeeping (mark published, count a failure, read the
      outbox: in the outbox drain, these must not take the cycle down with them).
    - Overlapping runs: two manual runs (`run_tick` without a tick, so no lease) at once in two threads
      with separate boto3 sessions and `PollerDeps`; either with a rendezvous (both have read every job
      before either writes: every transition is raced) or staggered by up to 0.3 s. With K > 1, some
      rendezvous overlaps are two scheduled runs of one tick instead (a duplicated schedule), which
      share the shards through their leases.
    - Fan-out (`fanout`, `LabConfig.p_fanout` of the cycles): coordinator(s) and poll workers over the
      K shards of the deployment (`LabConfig.shards`, `JOBWATCH_POLL_SHARDS`), with worker crashes
      (order delivered again), worker timeouts (remaining time running out partway, or killed with a
      poll in flight), two coordinators for one tick, and late orders of an older tick.
    - Lambda deadline: `remaining_s` drops below the margin after a random number of polls.
    - Slack sink scripted answers before batches: `rate_limited` (429 + Retry-After, rejected),
      `server_error`, `service_unavailable`, `drop` (rejected), and `accept_then_429`,
      `accept_then_500`, `accept_then_drop` (posted, but the client saw a failure).
    - E-mail: the e-mail queue (the transitions topic's FAILED and CANCELED events) drained through the
      e-mail sender after each Slack drain, with publishes to the e-mail topic failing before or after
      SNS took them, and batches processed twice or by two senders at once.
    - SQS: the SNS envelope of an earlier message re-sent to the Slack queue; a received batch processed
      twice before deletion; a batch processed by two senders concurrently (live-lease path).
    - Routed destinations (`LabConfig.routes`, on by default; `destinations`, `rig`): each round stores
      routes through the route store that send transitions, by label and event matches and past a
      `continue: false` route, to two Slack app channels (bot token in Secrets Manager, a second sink's
      Web API), a signed webhook (`webhook_receiver`, which verifies every signature), the stack's
      EventBridge bus (read through a rule with an SQS target), the default Slack webhook and e-mail.
      Their faults: Slack Web API `ok: false` errors, 5xx, 429 `ratelimited`, dropped connections and
      calls that took effect unanswered (`slack-app:*`); PutEvents entries failing with
      `FailedEntryCount` (internal failure, throttling) and calls failing before or after the put
      (`eventbridge:*`); webhook 5xx, 429, dropped connections, answers past the poster's deadline
      (timeouts after the receiver took the event) and slow answers (`webhook:*`).
    Time is one fake clock (`PollerDeps.clock` / `now_iso`): 120 s per poll cycle (the deployment's
    `poll_period_s`: each cycle is one tick of the schedule, its time the clock's at the cycle's start),
    so outbox backoff progresses without sleeping (adaptive polling is off), and the Slack sender runs
    between cycles, one batch per second. SQS visibility is kept in that time too: a record the sender
    reported as failed comes back when the visibility it asked for or else the queue's own timeout (365
    s in the template) has passed, and a copy the sender deferred (SendMessage with DelaySeconds: an
    order hold, Slack's Retry-After, a busy claim) is sent when its delay has passed in fake time.
    Every offer is a real SQS receive, so the redrive policy (maxReceiveCount 5) applies as in AWS;
    `slack_dead_lettered` counts what reached the DLQ (lost, unless another copy was shown);
    `slack_deferred` / `slack_collapsed` / `order_waits_expired` count deferred copies, duplicate
    waiting copies dropped, and transitions posted out of order because their predecessor did not
    arrive within `delivery_order_wait_s`. Sometimes
    the sender lags (handles only 0-2 batches before the next cycle). In-process Retry-After sleeps
    cost no time. Once every script is told, a few more cycles run with publish faults, then none,
    until the outbox and the Slack queue are empty (settling).

Invariants (`invariants.RoundResult`, checked at the end of each round)
    - transitions: expected events (sum over jobs); deliveries_expected: (event, destination) pairs
      where the routes (the pure `jobwatch.domain.routing` router on the ground truth) send them;
      delivered: those shown at their destination.
    - destinations: per destination (`routed.Tally`, with an `ok` flag): expected, delivered, lost,
      duplicated (copies beyond the first that the sender saw succeed), ambiguous (copies whose answer
      was lost: counted apart, never as duplicated), false (shown there but not routed there, or not
      a transition that happened), out_of_order (job stories whose first copies arrived out of
      recorded order; not held against the unordered EventBridge and e-mail channels), dead_lettered,
      refused (malformed or unauthentic sends).
    - lost / duplicated: the sums over destinations (an expected event never published is lost at
      every destination it would have gone to). SNS duplicates are allowed (at-least-once) and
      reported as `sns_redeliveries`.
    - false_alerts: distinct transitions seen on SNS that match no expected event, plus every
      destination's false ones.
    - emails_expected / emailed / email_lost / email_false / email_duplicated: routed transitions, those
      that reached the e-mail topic, those that did not, e-mails for anything else, and extra copies
      beyond the ones explained by a publish whose answer was lost (`email_ambiguous`).
    - out_of_order_sns / out_of_order_slack: jobs whose transitions reached SNS / Slack (first copy of
      each) in another order than they were recorded in (transition ids carry the order).
    - state_mismatches: jobs whose stored phase/status (`DynamoJobStore.get_job`) differs from the last
      upstream state the script served (LOST/NOT_FOUND for lost jobs).
    - outbox_left / slack_queue_left: the outbox and the Slack queue are empty at the end.
    - polled_twice_in_cycle: (job story, tick) pairs polled more than once by the scheduled runs of
      that tick (coordinators, inline runs, workers, redelivered and late orders), counted from every
      upstream request (`fanout.PollLedger`); manual runs are left out. lease_violations: a shard
      polled to the end by two runs of one tick, or a redelivered or late order that polled when the
      lease should have stopped it. A job a dead or timed-out worker did not poll stays on its step
      and is polled by a later tick: `stuck_jobs` and the stories themselves check it.
    Diagnostics (not invariants): `spurious_poll_errors` counts polls that failed because the lab's
    machine was too slow (a connect timeout to a simulator that would have answered a state, or
    would have sent a not-found or auth error). To jobwatch that is a real poll error, so ground truth
    counts it too: when one run recorded it cleanly, the schedule gets an `other` error step before
    the step served again (`Schedule.count_machine_error`), and the whole story is still predicted;
    when an overlap, a crash or a failed write leaves the count unknown, the story's health events
    are taken from SNS if everything else matches the script and alerts alternate with RECOVERED
    (`health_adopted`). Such lines go to `diagnostics`, not `problems`.

`ambiguous_reposts`: Slack incoming webhooks have no idempotency key. When Slack accepted a post but the
sender saw a failure (`accept_then_429`: real Slack's 429 means "rejected", so this is the pathological
case; `accept_then_500`; `accept_then_drop`: the connection broke before the answer), no sender can tell
it apart from a rejected post, and retrying shows the message again. Such extra posts are counted here
(each accepted post whose answer was not 2xx), never in `duplicated`; `duplicated` counts posts that
were answered 2xx more than once for one transition, which dedupe must prevent.

moto: its server checks a conditional write's condition and then applies it without excluding a
concurrent write, so two conditional puts of one key can both succeed, which DynamoDB never allows
(this showed up as a Slack message posted twice after two senders claimed it at once). Every DynamoDB
client of the lab therefore applies its writes one at a time (`injectors.AtomicWrites`); everything else
overlaps.

Determinism: schedules, cycle plans and delivery faults come from `random.Random` streams seeded by the
seed; error decisions inside a run hash (seed, round, cycle, run, operation, job or transition), so
thread order does not change them. Thread interleavings (which run wins a race, which call is the k-th
fault point of an overlapping cycle) are not seeded, so fault counts can differ slightly between two
runs of one seed; the invariants must hold for every interleaving.

Layout
    `config` (`LabConfig`, `lab_env`), `schedules` (job stories per source and their ground truth),
    `destinations` (the lab's routes and each destination type's faults), `rig` (one round's routed
    destinations: routes stored, bus tap, channels, what arrived), `routed` (per-destination tallies),
    `injectors` (what is injected around the poller, SNS, DynamoDB, SQS, Slack and e-mail, and the
    clients of a warm container), `fanout` (ticks, leases, coordinators and poll workers, the poll
    ledger), `rounds` (the round driver: plans, runs, advancing the scripts, settling), `drains` (the
    Slack and e-mail senders between cycles, in fake time), `invariants` (the checks at the end of a
    round and `RoundResult`), `lab` (`FaultLab`: simulators, rounds, summary).
    This package re-exports the names other code imports.
"""

from __future__ import annotations

from ..fakes import FakeClock
from .config import LabConfig, lab_env, print_progress
from .destinations import lab_routes
from .drains import Drains
from .fanout import FanoutCycle, FaultLeases, OrderQueue, PollLedger, RunUpstream
from .injectors import (
    CLIENT_CONFIG,
    P_EMAIL_PUBLISH_AFTER,
    P_EMAIL_PUBLISH_BEFORE,
    SINK_FAULTS,
    AtomicWrites,
    Container,
    Crash,
    EmailTopic,
    FaultStore,
    FlakyPublisher,
    InjectedAwsError,
    RunFaults,
    VisibilitySpy,
    dynamodb_client,
)
from .invariants import EMAILED_EVENTS, TID_IN_SLACK, RoundResult
from .lab import DeploymentFactory, FaultLab
from .rig import RouteRig
from .rounds import POLL_ERROR_KINDS, CyclePlan, Round, RunResult
from .routed import Seen, Tally
from .schedules import (
    ALL_EVENTS,
    BACKEND,
    CLUSTER,
    KITS,
    SOURCE_WEIGHTS,
    PlannedStep,
    Schedule,
    StateMaker,
    expected_story,
    make_schedule,
)

__all__ = [
    "ALL_EVENTS",
    "BACKEND",
    "CLIENT_CONFIG",
    "CLUSTER",
    "EMAILED_EVENTS",
    "KITS",
    "POLL_ERROR_KINDS",
    "P_EMAIL_PUBLISH_AFTER",
    "P_EMAIL_PUBLISH_BEFORE",
    "SINK_FAULTS",
    "SOURCE_WEIGHTS",
    "TID_IN_SLACK",
    "AtomicWrites",
    "Container",
    "Crash",
    "CyclePlan",
    "DeploymentFactory",
    "Drains",
    "EmailTopic",
    "FakeClock",
    "FanoutCycle",
    "FaultLab",
    "FaultLeases",
    "FaultStore",
    "FlakyPublisher",
    "InjectedAwsError",
    "LabConfig",
    "OrderQueue",
    "PlannedStep",
    "PollLedger",
    "Round",
    "RoundResult",
    "RouteRig",
    "RunFaults",
    "RunResult",
    "RunUpstream",
    "Schedule",
    "Seen",
    "StateMaker",
    "Tally",
    "VisibilitySpy",
    "dynamodb_client",
    "expected_story",
    "lab_env",
    "lab_routes",
    "make_schedule",
    "print_progress",
]
