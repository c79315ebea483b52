"""The `jobwatch` command: local operation of the same code paths the Lambda functions run.

Registration commands (`track`, `list`, `show`, `untrack`, `test`, `watch`, `unwatch`, `watches`,
`discover`, `route ...`, `routes ...`) build the HTTP API's own request models and call
`jobwatch.operations`, exactly as the API handler does: one validation and one behaviour for both.
Logs go to stderr; stdout carries only the command's result, so `eval "$(jobwatch local-stack)"` and
`jobwatch check --json | jq` work.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jobwatch.domain.errors import PollError, RegistrationError
from jobwatch.domain.model import Snapshot
from jobwatch.sources import source_names
from jobwatch_tools.errors import explain
from jobwatch_tools.output import EXIT_NOT_FOUND, EXIT_USAGE, JSON_HELP, print
from jobwatch_tools.output import actor as _actor
from jobwatch_tools.output import all_jobs as _all_jobs
from jobwatch_tools.output import fail as _fail
from jobwatch_tools.output import operations as _operations
from jobwatch_tools.output import print_json as _print_json
from jobwatch_tools.output import resolve_key as _resolve_key
from jobwatch_tools.output import table as _table
from jobwatch_tools.quiet_commands import add_quiet_parsers as _add_quiet_parsers
from jobwatch_tools.quiet_commands import quiet_line as _quiet_line
from jobwatch_tools.route_commands import add_route_parsers as _add_route_parsers

if TYPE_CHECKING:
    from jobwatch.app.models import JobResource
    from jobwatch.app.operations import Operations

WATCH_KINDS = ("zilliz-cloud-v1", "zilliz-cloud-v2", "milvus", "weaviate-backups")
JOB_REF_HELP = "the job: its job id, a unique prefix of its key, or the full key"


def _add_job_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", help=f"job source: {', '.join(source_names())}")
    parser.add_argument("--endpoint", required=True, help="API base URL (https; http only for loopback)")
    parser.add_argument("--job-id", required=True, help="the upstream job id")
    parser.add_argument("--backend", help="Weaviate backup backend (s3, gcs, azure, filesystem)")
    parser.add_argument("--cluster-id", help="Zilliz Cloud cluster id")
    parser.add_argument(
        "--option", action="append", metavar="K=V", help="source option (bucket, path, dbName, apiVersion)"
    )


def _add_registration_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--secret", help="name of the Secrets Manager secret holding the API key")
    parser.add_argument(
        "--allow-missing-secret",
        action="store_true",
        help="accept a --secret that does not exist yet (refused otherwise; polls fail until it exists)",
    )
    parser.add_argument("--label", action="append", metavar="K=V", help="label the job (repeatable)")
    parser.add_argument(
        "--notify-event", action="append", metavar="EVENT[,EVENT]", help="publish only these events"
    )
    parser.add_argument("--stall-after", type=int, metavar="S", help="seconds without progress = STALLED")
    parser.add_argument("--max-duration", type=int, metavar="S", help="seconds running = OVERDUE")


def _job_fields(args: argparse.Namespace) -> dict[str, Any]:
    from jobwatch.app.registration import parse_pairs

    return {
        "source": args.source,
        "endpoint": args.endpoint,
        "job_id": args.job_id,
        "backend": args.backend,
        "cluster_id": args.cluster_id,
        "options": parse_pairs(args.option, "option"),
    }


def _notify_fields(args: argparse.Namespace) -> dict[str, Any] | None:
    """`--notify-event/--stall-after/--max-duration` as the API's `notify` object (None: defaults)."""
    events = [e.strip() for text in args.notify_event or [] for e in text.split(",") if e.strip()]
    notify: dict[str, Any] = {}
    if events:
        notify["events"] = events
    if args.stall_after is not None:
        notify["stall_after_s"] = args.stall_after
    if args.max_duration is not None:
        notify["max_duration_s"] = args.max_duration
    return notify or None


def _snapshot_text(snapshot: Snapshot, eta: str = "") -> str:
    """The snapshot as `label: value` lines; `eta` (a tracked job's estimate in words) under progress."""
    from jobwatch.domain.humanize import format_progress

    lines = [f"phase:     {snapshot.phase.value}", f"status:    {snapshot.status}"]
    if not snapshot.status_known:
        lines.append("           (status unknown to jobwatch: treated as RUNNING, never alerted on)")
    lines.append(f"progress:  {format_progress(snapshot.progress)}")
    if eta:
        lines.append(f"eta:       {eta}")
    if snapshot.started_at:
        lines.append(f"started:   {snapshot.started_at}")
    if snapshot.completed_at:
        lines.append(f"completed: {snapshot.completed_at}")
    if snapshot.error:
        lines.append(f"error:     {snapshot.error}")
    if snapshot.details:
        from jobwatch_tools.terminal import detail_lines

        lines += ["details:", *detail_lines(snapshot.details, indent="  ")]
    return "\n".join(lines)


def _api_key(args: argparse.Namespace) -> tuple[bool, str | None]:
    """(found, the key) from `--api-key-env VAR`: (True, None) without the flag, (False, None) when
    VAR is empty or unset (an operator who names a variable means to send a key)."""
    if not args.api_key_env:
        return True, None
    key = os.environ.get(args.api_key_env)
    return bool(key), key or None


def cmd_check(args: argparse.Namespace) -> int:
    from jobwatch.app.registration import build_spec
    from jobwatch.domain.endpoints import EndpointPolicy
    from jobwatch.settings import EndpointSettings
    from jobwatch_tools.local import check_job

    try:
        spec = build_spec(_job_fields(args), EndpointPolicy.from_settings(EndpointSettings.from_env()))
    except RegistrationError as exc:
        return _fail(str(exc))
    found, api_key = _api_key(args)
    if not found:
        return _fail(f"environment variable {args.api_key_env} is empty or unset")
    try:
        snapshot = check_job(spec, api_key)
    except PollError as exc:
        return _fail(f"poll failed: {exc}")
    if args.json:
        print(json.dumps(snapshot.to_wire(), indent=2, sort_keys=True))
    else:
        print(_snapshot_text(snapshot))
    return 0


def cmd_track(args: argparse.Namespace) -> int:
    from jobwatch.app.registration import parse_job_registration, parse_pairs

    try:
        fields = _job_fields(args)
        fields["secret_name"] = args.secret
        fields["labels"] = parse_pairs(args.label, "label")
        fields["notify"] = _notify_fields(args)
        fields["allow_missing_secret"] = args.allow_missing_secret
        job, created = _operations().track(parse_job_registration(fields), _actor())
    except RegistrationError as exc:
        return _fail(f"registration refused, nothing written: {exc}")
    verb = "tracking" if created else "already tracked"
    print(f"{verb} {job.key} ({job.spec.source} {job.spec.job_id})")
    return 0


JOB_COLUMNS = ["KEY", "JOB ID", "PHASE", "PROGRESS", "ETA", "UPDATED", "LABELS"]


def _job_row(job: JobResource, now: datetime) -> list[str]:
    from jobwatch_tools.terminal import progress_cell, relative_time, stored_eta_text

    snap = job.snapshot
    labels = ",".join(f"{k}={v}" for k, v in sorted(job.spec.labels.items()))
    return [
        job.key,
        job.spec.job_id,
        snap.phase.value if snap else "(not polled yet)",
        progress_cell(snap.progress) if snap else "",
        stored_eta_text(job.eta, None, now) or ("-" if job.eta_note else ""),
        relative_time(job.updated_at, now),
        labels,
    ]


def _job_table(jobs: Sequence[JobResource]) -> None:
    """A rich table on a terminal; plain aligned columns (one job per line) through a pipe."""
    now = datetime.now(UTC)
    rows = [_job_row(job, now) for job in jobs]
    if sys.stdout.isatty():
        from jobwatch_tools.screens import print_table

        print_table(JOB_COLUMNS, rows)
        return
    _table([JOB_COLUMNS, *rows])


def cmd_list(args: argparse.Namespace) -> int:
    from jobwatch.domain.model import Phase

    try:
        phase = Phase(args.phase) if args.phase else None
        if args.source and args.source not in source_names():
            return _fail(f"unknown source {args.source!r}; valid sources: {', '.join(source_names())}")
        jobs = _all_jobs(_operations(), phase=phase, source=args.source, labels=args.label or [])
    except RegistrationError as exc:
        return _fail(str(exc))
    if args.json:
        _print_json([job.to_wire() for job in jobs])
        return 0
    _job_table(jobs)
    return 0


def _reference(args: argparse.Namespace) -> tuple[Operations, str | None]:
    """(operations, the key `args.key` names), or a None key after printing why (exit 2)."""
    from jobwatch_tools.references import ReferenceProblem

    operations = _operations()
    try:
        return operations, _resolve_key(operations, args.key)
    except ReferenceProblem as exc:
        _fail(str(exc))
        return operations, None


def cmd_show(args: argparse.Namespace) -> int:
    operations, key = _reference(args)
    job = operations.show(key) if key else None
    if job is None:
        return _fail(f"no tracked job {args.key!r}", EXIT_NOT_FOUND) if key else EXIT_USAGE
    if args.json:
        _print_json(job.to_wire())
        return 0
    spec = job.spec
    print(f"key:       {job.key}")
    print(f"source:    {spec.source}")
    print(f"job id:    {spec.job_id}")
    print(f"endpoint:  {spec.endpoint}" + (f"  ({spec.scope.strip('/')})" if spec.scope.strip("/") else ""))
    if spec.labels:
        print("labels:    " + ",".join(f"{k}={v}" for k, v in sorted(spec.labels.items())))
    print(f"tracked:   {job.created_at} (updated {job.updated_at}, version {job.version})")
    print(_snapshot_text(job.snapshot, _eta_text(job)) if job.snapshot else "phase:     (not polled yet)")
    if (quiet := _quiet_line(job)) is not None:
        print(quiet)
    for transition in job.recent_transitions or []:
        print(f"  {transition.occurred_at}  {transition.event:<10} {transition.transition_id}")
    return 0


def _eta_text(job: JobResource) -> str:
    """`14:32 UTC (in 23 min)` or `no estimate (why)` for a running job; empty otherwise."""
    from jobwatch_tools.terminal import stored_eta_text

    return stored_eta_text(job.eta, job.eta_note, datetime.now(UTC))


def cmd_untrack(args: argparse.Namespace) -> int:
    operations, key = _reference(args)
    if key is None:
        return EXIT_USAGE
    if not operations.untrack(key, _actor()):
        return _fail(f"no tracked job {args.key!r}", EXIT_NOT_FOUND)
    print(f"untracked {key}")
    return 0


def cmd_test(args: argparse.Namespace) -> int:
    operations, key = _reference(args)
    if key is None:
        return EXIT_USAGE
    sent = operations.send_test(key)
    if sent is None:
        return _fail(f"no tracked job {args.key!r}", EXIT_NOT_FOUND)
    print(f"test notification published: {sent.transition_id} (SNS message {sent.message_id})")
    return 0


DIRECT_ONLY = ("endpoint", "job_id", "backend", "cluster_id", "option", "api_key_env")
"""`follow` flags that describe an upstream job: they go with --direct, not with tracked JOBs."""


def _follow_direct(args: argparse.Namespace) -> Callable[[], Any] | int:
    """The fetch of `follow --direct SOURCE ...` (what `check` polls), or an exit code."""
    from jobwatch.app.registration import build_spec
    from jobwatch.domain.endpoints import EndpointPolicy
    from jobwatch.settings import EndpointSettings
    from jobwatch_tools.follow import direct_fetch

    if args.jobs or args.poll:
        return _fail("--direct follows one upstream job: leave out JOB references and --poll")
    if not args.endpoint or not args.job_id:
        return _fail("--direct needs --endpoint and --job-id (as `jobwatch check` does)")
    try:
        spec = build_spec(_job_fields(args), EndpointPolicy.from_settings(EndpointSettings.from_env()))
    except RegistrationError as exc:
        return _fail(str(exc))
    found, api_key = _api_key(args)
    if not found:
        return _fail(f"environment variable {args.api_key_env} is empty or unset")
    return direct_fetch(spec, api_key)


def _follow_tracked(args: argparse.Namespace) -> Callable[[], Any] | int:
    """The fetch of `follow JOB...` (the store's view of tracked jobs), or an exit code."""
    from jobwatch_tools.follow import store_fetch
    from jobwatch_tools.references import ReferenceProblem

    if not args.jobs:
        return _fail("follow needs at least one JOB (or --direct SOURCE --endpoint URL --job-id ID)")
    given = [flag for flag in DIRECT_ONLY if getattr(args, flag)]
    if given:
        flags = ", ".join("--" + flag.replace("_", "-") for flag in given)
        return _fail(f"{flags} describe an upstream job: use them with --direct")
    operations = _operations()
    try:
        keys = list(dict.fromkeys(_resolve_key(operations, ref) for ref in args.jobs))
    except ReferenceProblem as exc:
        return _fail(str(exc))
    return store_fetch(keys, poll=args.poll)


def cmd_follow(args: argparse.Namespace) -> int:
    from jobwatch_tools.follow import EXIT_INTERRUPTED, EXIT_TIMEOUT, Follow, choose_view

    if args.interval <= 0 or (args.timeout is not None and args.timeout <= 0):
        return _fail("--interval and --timeout are seconds, more than 0")
    fetch = _follow_direct(args) if args.source else _follow_tracked(args)
    if isinstance(fetch, int):
        return fetch
    view = choose_view(sys.stdout, args.interval)
    try:
        code = Follow(fetch, view, args.interval, args.timeout).run()
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    finally:
        view.close()
    if code == EXIT_TIMEOUT:
        _fail(f"follow timed out after {args.timeout:g}s with jobs still running", EXIT_TIMEOUT)
    return code


def cmd_watch(args: argparse.Namespace) -> int:
    from jobwatch.app.models import WatchRegistration
    from jobwatch.app.registration import parse_model, parse_pairs

    try:
        fields = {
            "kind": args.kind,
            "endpoint": args.endpoint,
            "cluster_id": args.cluster_id,
            "backend": args.backend,
            "db_name": args.db_name,
            "secret_name": args.secret,
            "labels": parse_pairs(args.label, "label"),
            "notify": _notify_fields(args),
            "allow_missing_secret": args.allow_missing_secret,
        }
        watch, created = _operations().add_watch(parse_model(WatchRegistration, fields), _actor())
    except RegistrationError as exc:
        return _fail(f"watch refused, nothing written: {exc}")
    print(f"{'watching' if created else 'already watching'} {watch.id} ({watch.kind} {watch.endpoint})")
    return 0


def cmd_unwatch(args: argparse.Namespace) -> int:
    if not _operations().remove_watch(args.id, _actor()):
        return _fail(f"no watch {args.id!r}", EXIT_NOT_FOUND)
    print(f"unwatched {args.id} (jobs it discovered stay tracked)")
    return 0


def cmd_watches(args: argparse.Namespace) -> int:
    watches = _operations().list_watches().watches
    if args.json:
        _print_json([watch.to_wire() for watch in watches])
        return 0
    rows = [["ID", "KIND", "ENDPOINT", "SCOPE", "PRIMED", "LABELS"]]
    for watch in watches:
        scope = watch.cluster_id or watch.backend or watch.db_name or ""
        labels = ",".join(f"{k}={v}" for k, v in sorted(watch.labels.items()))
        rows.append([watch.id, watch.kind, watch.endpoint, scope, watch.primed_at or "(not yet)", labels])
    _table(rows)
    return 0


def cmd_upgrade(args: argparse.Namespace) -> int:
    from jobwatch_tools.local import upgrade_table

    indexed, moved = upgrade_table()
    if args.json:
        print(json.dumps({"jobsIndexed": indexed, "jobsMovedShard": moved}))
        return 0
    done = [f"{indexed} job(s) added to the listing index"] if indexed else []
    done += [f"{moved} job(s) moved to their poll shard"] if moved else []
    print(f"upgrade: {'; '.join(done) or 'table already up to date'}")
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    from jobwatch_tools.planner import Assumptions, describe, plan, synthetic_fleet

    if args.jobs < 1 or args.endpoints < 1:
        return _fail("--jobs and --endpoints must be at least 1")
    assume = Assumptions(
        period_s=args.period_s,
        memory_mb=args.memory_mb,
        cpu_us_per_job=args.cpu_us,
        latency_s=args.latency_ms / 1000,
    )
    result = plan(synthetic_fleet(args.jobs, args.endpoints, args.seed), assume)
    if args.json:
        _print_json(result.as_dict())
        return 0
    for line in describe(result, assume):
        print(line)
    return 0


def cmd_discover(args: argparse.Namespace) -> int:
    from jobwatch_tools.local import discover_once

    report = discover_once()
    if args.json:
        print(json.dumps(report.as_dict(), sort_keys=True))
        return 0
    print(
        f"discover: watches={report.watches} listed={report.listed} tracked={report.tracked} "
        f"recorded_ended={report.recorded_ended} known={report.known}"
    )
    for error in report.errors:
        print(f"  watch error {error['watchId']}: {error['error']}")
    return 0


def cmd_api_serve(args: argparse.Namespace) -> int:
    from jobwatch_tools.api_server import serve

    return serve(args.port)


def _poll_once(as_json: bool, *, quiet: bool = False) -> dict[str, Any]:
    from jobwatch.observability import metrics
    from jobwatch_tools.local import poll_once

    report = poll_once().as_dict()
    metrics.clear_metrics()  # the Lambda flushes them as EMF; a local run only reports them
    if quiet:
        return report
    if as_json:
        print(json.dumps(report, sort_keys=True))
    else:
        print(f"poll: {_poll_counts(report)}")
        for event in report["events"]:
            print(f"  {event['event']:<10} {event['jobKey']}  ({event['transitionId']})")
        for error in report["errors"]:
            print(f"  poll error {error['jobId']}: {error['error']}")
    return report


def _poll_counts(report: dict[str, Any]) -> str:
    skip = ("events", "errors", "duration_s")
    counts = ", ".join(f"{k}={v}" for k, v in report.items() if k not in skip and v)
    return f"{counts or 'nothing to poll'} in {report['duration_s']}s"


def _deliver_once(as_json: bool, *, quiet: bool = False) -> dict[str, Any]:
    from jobwatch.observability import metrics
    from jobwatch_tools.local import drain_notify_queue

    report = drain_notify_queue()
    metrics.clear_metrics()
    summary = {
        "delivered": report.delivered,
        "duplicates": report.duplicates,
        "retried": report.retried,
        "deferred": report.deferred,
        "deadLettered": report.dead_lettered,
    }
    if quiet:
        return summary
    print(
        json.dumps(summary, sort_keys=True)
        if as_json
        else "deliver: " + ", ".join(f"{k}={v}" for k, v in summary.items())
    )
    return summary


def cmd_poll(args: argparse.Namespace) -> int:
    _poll_once(args.json)
    return 0


def cmd_deliver(args: argparse.Namespace) -> int:
    try:
        _deliver_once(args.json)
    except RuntimeError as exc:
        return _fail(str(exc))
    return 0


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _run_cycle(cycle: int, as_json: bool) -> None:
    """One poll-and-deliver cycle of `run`: JSON as `poll --json` and `deliver --json` print it, or
    timestamped lines: each transition and poll error as soon as the poll returns, then one summary."""
    if as_json:
        _poll_once(True)
        _deliver_once(True)
        return
    report = _poll_once(False, quiet=True)
    for event in report["events"]:
        print(f"{_stamp()}  {event['event']:<10} {event['jobKey']}  ({event['transitionId']})")
    for error in report["errors"]:
        print(f"{_stamp()}  poll error {error['jobId']}: {error['error']}")
    summary = _deliver_once(False, quiet=True)
    delivered = ", ".join(f"{k}={v}" for k, v in summary.items() if v) or "nothing to deliver"
    print(f"{_stamp()}  cycle {cycle}: poll {_poll_counts(report)}; deliver {delivered}")


def cmd_run(args: argparse.Namespace) -> int:
    cycle = 0
    try:
        while args.cycles is None or cycle < args.cycles:
            started = time.monotonic()
            cycle += 1
            _run_cycle(cycle, args.json)
            if args.cycles is not None and cycle >= args.cycles:
                break
            time.sleep(max(0.0, args.interval - (time.monotonic() - started)))
    except KeyboardInterrupt:
        return 130
    return 0


def cmd_local_stack(args: argparse.Namespace) -> int:
    from jobwatch_tools.local_stack import create_local_stack, render_exports

    env = create_local_stack(
        Path(args.template), slack_webhook=args.slack_webhook, allow_real_aws=args.allow_real_aws
    )
    print(render_exports(env).rstrip("\n"))
    return 0


def _add_follow_parser(sub: Any) -> None:
    p = sub.add_parser(
        "follow",
        help="show jobs live until each ends; exit 0 if all SUCCEEDED, 1 otherwise, 3 on --timeout",
        description="Follow tracked jobs (re-read from the store each refresh; the poller polls them, or "
        "--poll does here), or one upstream job with --direct (polled here, no AWS). A terminal gets a "
        "live table; a pipe gets one timestamped line per change. Exit codes: 0 every job SUCCEEDED, "
        "1 one ended otherwise (FAILED, CANCELED, LOST, untracked), 2 usage or unknown/ambiguous JOB, "
        "3 --timeout passed first.",
    )
    p.add_argument("jobs", nargs="*", metavar="JOB", help=JOB_REF_HELP + " (one or more)")
    p.add_argument(
        "--interval", type=float, default=5.0, metavar="S", help="seconds between refreshes (default 5)"
    )
    p.add_argument("--timeout", type=float, metavar="S", help="give up after S seconds: exit 3")
    p.add_argument(
        "--poll", action="store_true", help="run one poll-and-deliver cycle here before each refresh"
    )
    p.add_argument(
        "--direct",
        dest="source",
        metavar="SOURCE",
        help=f"poll this upstream job directly instead (like `check`): {', '.join(source_names())}",
    )
    p.add_argument("--endpoint", help="with --direct: API base URL (https; http only for loopback)")
    p.add_argument("--job-id", help="with --direct: the upstream job id")
    p.add_argument("--backend", help="with --direct: Weaviate backup backend (s3, gcs, azure, filesystem)")
    p.add_argument("--cluster-id", help="with --direct: Zilliz Cloud cluster id")
    p.add_argument("--option", action="append", metavar="K=V", help="with --direct: source option")
    p.add_argument("--api-key-env", metavar="VAR", help="with --direct: environment variable holding the key")
    p.set_defaults(func=cmd_follow)


def build_parser() -> argparse.ArgumentParser:
    from jobwatch.domain.model import Phase

    parser = argparse.ArgumentParser(
        prog="jobwatch", description=__doc__.splitlines()[0] if __doc__ else None
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO to stderr")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser(
        "local-stack", help="create the template's table, topic, queues and secrets (moto or AWS)"
    )
    p.add_argument("--template", default="template.yaml", help="SAM template to read (default template.yaml)")
    p.add_argument("--slack-webhook", help="value stored in the Slack webhook secret")
    p.add_argument(
        "--allow-real-aws",
        action="store_true",
        help="create the resources in real AWS too (normally `sam deploy` does that)",
    )
    p.set_defaults(func=cmd_local_stack)

    p = sub.add_parser("check", help="poll one job once without tracking it")
    _add_job_arguments(p)
    p.add_argument("--api-key-env", metavar="VAR", help="environment variable holding the API key")
    p.add_argument("--json", action="store_true", help=JSON_HELP)
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("track", help="start tracking a job (same as POST /jobs)")
    _add_job_arguments(p)
    _add_registration_arguments(p)
    p.set_defaults(func=cmd_track)

    p = sub.add_parser("list", help="tracked jobs and their phase (same as GET /jobs)")
    p.add_argument("--phase", choices=[phase.value for phase in Phase], help="only jobs in this phase")
    p.add_argument("--source", help="only jobs of this source")
    p.add_argument("--label", action="append", metavar="K=V", help="only jobs with this label (repeatable)")
    p.add_argument("--json", action="store_true", help=JSON_HELP)
    p.set_defaults(func=cmd_list)

    one_job: list[tuple[str, str, Callable[[argparse.Namespace], int], bool]] = [
        ("show", "one job with its recent transitions (same as GET /jobs/KEY)", cmd_show, True),
        ("untrack", "stop tracking a job (same as DELETE /jobs/KEY)", cmd_untrack, False),
        ("test", "send a test notification for a job (same as POST /jobs/KEY/test)", cmd_test, False),
    ]
    for name, what, command, has_json in one_job:
        p = sub.add_parser(name, help=what)
        p.add_argument("key", metavar="JOB", help=JOB_REF_HELP)
        if has_json:
            p.add_argument("--json", action="store_true", help=JSON_HELP)
        p.set_defaults(func=command)

    _add_follow_parser(sub)

    p = sub.add_parser("watch", help="auto-discover a cluster's or backend's jobs (same as POST /watches)")
    p.add_argument("kind", choices=WATCH_KINDS, help="what to list: the source's job listing")
    p.add_argument("--endpoint", required=True, help="API base URL (https; http only for loopback)")
    p.add_argument("--cluster-id", help="Zilliz Cloud cluster id (zilliz-cloud-v1/v2)")
    p.add_argument("--backend", help="Weaviate backup backend (weaviate-backups)")
    p.add_argument("--db-name", help="Milvus database (milvus)")
    _add_registration_arguments(p)
    p.set_defaults(func=cmd_watch)

    p = sub.add_parser("unwatch", help="remove a watch (same as DELETE /watches/ID)")
    p.add_argument("id", help="the watch id (see `jobwatch watches`)")
    p.set_defaults(func=cmd_unwatch)

    p = sub.add_parser("watches", help="list watches (same as GET /watches)")
    p.add_argument("--json", action="store_true", help=JSON_HELP)
    p.set_defaults(func=cmd_watches)

    p = sub.add_parser("discover", help="list every watch once and track new jobs")
    p.add_argument("--json", action="store_true", help=JSON_HELP)
    p.set_defaults(func=cmd_discover)

    p = sub.add_parser("upgrade", help="bring the table up to date after deploying a new version")
    p.add_argument("--json", action="store_true", help=JSON_HELP)
    p.set_defaults(func=cmd_upgrade)

    p = sub.add_parser("plan", help="model a fleet: does one poller keep up, what limits it, what it costs")
    p.add_argument("--jobs", type=int, default=100_000, help="jobs in the synthetic fleet (default 100000)")
    p.add_argument(
        "--endpoints", type=int, default=500, help="upstream endpoints they spread over (default 500)"
    )
    p.add_argument("--seed", type=int, default=1, help="seed of the fleet's shape (default 1)")
    p.add_argument("--period-s", type=float, default=60.0, help="poll period in seconds (default 60)")
    p.add_argument("--memory-mb", type=int, default=512, help="poller memory (default 512, the template's)")
    p.add_argument(
        "--cpu-us", type=float, default=950.0, help="CPU per polled job in us (default: make bench)"
    )
    p.add_argument("--latency-ms", type=float, default=50.0, help="upstream answer time (default 50)")
    p.add_argument("--json", action="store_true", help=JSON_HELP)
    p.set_defaults(func=cmd_plan)

    p = sub.add_parser("api", help="the registration API")
    api_sub = p.add_subparsers(dest="api_command", required=True)
    p = api_sub.add_parser("serve", help="serve the API handler over HTTP on 127.0.0.1")
    p.add_argument("--port", type=int, default=8080, help="TCP port on 127.0.0.1 (default 8080)")
    p.set_defaults(func=cmd_api_serve)

    p = sub.add_parser("poll", help="run one poll cycle (the poller function's code path)")
    p.add_argument("--json", action="store_true", help=JSON_HELP)
    p.set_defaults(func=cmd_poll)

    p = sub.add_parser("deliver", help="drain the notifier's queue once (the notifier function's code path)")
    p.add_argument("--json", action="store_true", help=JSON_HELP)
    p.set_defaults(func=cmd_deliver)

    p = sub.add_parser("run", help="poll and deliver in a loop")
    p.add_argument(
        "--interval",
        type=float,
        default=60.0,
        metavar="S",
        help="seconds from one cycle's start to the next (default 60)",
    )
    p.add_argument("--cycles", type=int, help="stop after this many cycles")
    p.add_argument("--json", action="store_true", help=JSON_HELP)
    p.set_defaults(func=cmd_run)

    _add_quiet_parsers(sub)
    _add_route_parsers(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from jobwatch.observability import logger

    logger.setLevel("INFO" if args.verbose else os.environ.get("JOBWATCH_CLI_LOG_LEVEL", "WARNING"))
    command: Callable[[argparse.Namespace], int] = args.func
    return explain(lambda: command(args), verbose=args.verbose, say=lambda line: print(line, file=sys.stderr))


if __name__ == "__main__":
    raise SystemExit(main())
