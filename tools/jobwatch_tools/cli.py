"""The `jobwatch` command: local operation of the same code paths the Lambda functions run.

Registration commands (`track`, `list`, `show`, `untrack`, `test`, `watch`, `unwatch`, `watches`,
`discover`, `route ...`, `routes ...`) build the HTTP API's own request models and call
`jobwatch.operations`, exactly as the API handler does: one validation and one behaviour for both.
Logs go to stderr; stdout carries only the command's result, so `eval "$(jobwatch local-stack)"` and
`jobwatch check --json | jq` work.
"""

from __future__ import annotations

import argparse
import builtins
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from jobwatch.domain.errors import PollError, RegistrationError
from jobwatch.domain.model import Snapshot
from jobwatch.domain.text import terminal_safe
from jobwatch.sources import source_names
from jobwatch_tools.errors import explain

if TYPE_CHECKING:
    from jobwatch.app.models import Explanation, JobResource, RoutesDiff, SubscriptionChanges
    from jobwatch.app.operations import Operations
    from jobwatch.domain.routing import Route

EXIT_USAGE = 2
EXIT_NOT_FOUND = 1
WATCH_KINDS = ("zilliz-cloud-v1", "zilliz-cloud-v2", "milvus", "weaviate-backups")


def print(*values: object, file: TextIO | None = None) -> None:  # every line the CLI prints
    """Stored and upstream text is untrusted: a job id or an upstream error may carry ANSI escapes or a
    right-to-left override. Every value is shown with such characters as visible escapes."""
    builtins.print(*(terminal_safe(value, keep_newlines=True) for value in values), file=file)


def _fail(message: str, code: int = EXIT_USAGE) -> int:
    print(f"jobwatch: {message}", file=sys.stderr)
    return code


def _add_job_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", help=f"job source: {', '.join(source_names())}")
    parser.add_argument("--endpoint", required=True, help="API base URL (https; http only for loopback)")
    parser.add_argument("--job-id", required=True)
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
    parser.add_argument("--label", action="append", metavar="K=V")
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


def _operations() -> Operations:
    from jobwatch_tools.local import operations

    return operations()


def _actor() -> str:
    """Who runs the command, for the audit lines of registrations and removals."""
    import getpass

    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, sort_keys=True))


def _snapshot_text(snapshot: Snapshot) -> str:
    from jobwatch.domain.humanize import format_progress

    lines = [f"phase:     {snapshot.phase.value}", f"status:    {snapshot.status}"]
    if not snapshot.status_known:
        lines.append("           (status unknown to jobwatch: treated as RUNNING, never alerted on)")
    lines.append(f"progress:  {format_progress(snapshot.progress)}")
    if snapshot.started_at:
        lines.append(f"started:   {snapshot.started_at}")
    if snapshot.completed_at:
        lines.append(f"completed: {snapshot.completed_at}")
    if snapshot.error:
        lines.append(f"error:     {snapshot.error}")
    if snapshot.details:
        lines.append("details:   " + json.dumps(snapshot.details, sort_keys=True))
    return "\n".join(lines)


def cmd_check(args: argparse.Namespace) -> int:
    from jobwatch.app.registration import build_spec
    from jobwatch.domain.endpoints import EndpointPolicy
    from jobwatch.settings import EndpointSettings
    from jobwatch_tools.local import check_job

    try:
        spec = build_spec(_job_fields(args), EndpointPolicy.from_settings(EndpointSettings.from_env()))
    except RegistrationError as exc:
        return _fail(str(exc))
    api_key = None
    if args.api_key_env:
        api_key = os.environ.get(args.api_key_env)
        if not api_key:
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


def _job_row(job: JobResource) -> list[str]:
    from jobwatch.domain.humanize import format_progress

    snap = job.snapshot
    labels = ",".join(f"{k}={v}" for k, v in sorted(job.spec.labels.items()))
    return [
        job.key,
        job.spec.job_id,
        snap.phase.value if snap else "(not polled yet)",
        format_progress(snap.progress) if snap else "",
        job.updated_at,
        labels,
    ]


def _table(rows: list[list[str]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def cmd_list(args: argparse.Namespace) -> int:
    from jobwatch.app.operations import MAX_PAGE_SIZE
    from jobwatch.domain.model import Phase

    operations = _operations()
    jobs: list[JobResource] = []
    token: str | None = None
    try:
        phase = Phase(args.phase) if args.phase else None
        if args.source and args.source not in source_names():
            return _fail(f"unknown source {args.source!r}; valid sources: {', '.join(source_names())}")
        while True:  # every page: the CLI shows everything that matches
            page = operations.list_jobs(
                phase=phase,
                source=args.source,
                labels=args.label or [],
                limit=MAX_PAGE_SIZE,
                next_token=token,
            )
            jobs.extend(page.jobs)
            token = page.next_token
            if token is None:
                break
    except RegistrationError as exc:
        return _fail(str(exc))
    if args.json:
        _print_json([job.to_wire() for job in jobs])
        return 0
    _table([["KEY", "JOB ID", "PHASE", "PROGRESS", "UPDATED", "LABELS"], *(_job_row(job) for job in jobs)])
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    job = _operations().show(args.key)
    if job is None:
        return _fail(f"no tracked job {args.key!r}", EXIT_NOT_FOUND)
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
    print(_snapshot_text(job.snapshot) if job.snapshot else "phase:     (not polled yet)")
    for transition in job.recent_transitions or []:
        print(f"  {transition.occurred_at}  {transition.event:<10} {transition.transition_id}")
    return 0


def cmd_untrack(args: argparse.Namespace) -> int:
    if not _operations().untrack(args.key, _actor()):
        return _fail(f"no tracked job {args.key!r}", EXIT_NOT_FOUND)
    print(f"untracked {args.key}")
    return 0


def cmd_test(args: argparse.Namespace) -> int:
    sent = _operations().send_test(args.key)
    if sent is None:
        return _fail(f"no tracked job {args.key!r}", EXIT_NOT_FOUND)
    print(f"test notification published: {sent.transition_id} (SNS message {sent.message_id})")
    return 0


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


def _poll_once(as_json: bool) -> dict[str, Any]:
    from jobwatch.observability import metrics
    from jobwatch_tools.local import poll_once

    report = poll_once().as_dict()
    metrics.clear_metrics()  # the Lambda flushes them as EMF; a local run only reports them
    if as_json:
        print(json.dumps(report, sort_keys=True))
    else:
        skip = ("events", "errors", "duration_s")
        counts = ", ".join(f"{k}={v}" for k, v in report.items() if k not in skip and v)
        print(f"poll: {counts or 'nothing to poll'} in {report['duration_s']}s")
        for event in report["events"]:
            print(f"  {event['event']:<10} {event['jobKey']}  ({event['transitionId']})")
        for error in report["errors"]:
            print(f"  poll error {error['jobId']}: {error['error']}")
    return report


def _deliver_once(as_json: bool) -> dict[str, Any]:
    from jobwatch.observability import metrics
    from jobwatch_tools.local import drain_email_queue, drain_slack_queue

    report = drain_slack_queue()
    emails = drain_email_queue()
    metrics.clear_metrics()
    summary = {
        "delivered": report.delivered,
        "duplicates": report.duplicates,
        "retried": report.retried,
        "deferred": report.deferred,
        "deadLettered": report.dead_lettered,
        "emailed": emails.delivered if emails else 0,
    }
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


def cmd_run(args: argparse.Namespace) -> int:
    cycle = 0
    try:
        while args.cycles is None or cycle < args.cycles:
            started = time.monotonic()
            _poll_once(args.json)
            _deliver_once(args.json)
            cycle += 1
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


# -- routes ------------------------------------------------------------------------------------------------

ROUTE_FLAGS = (
    "source",
    "label",
    "label_exists",
    "event",
    "severity",
    "slack_app",
    "token_secret",
    "slack_webhook_secret",
    "default_slack",
    "email",
    "default_email",
    "eventbridge",
    "webhook",
    "signing_secret",
    "mention",
    "stop",
    "position",
)
"""`route add` flags that describe the route (refused together with --file, which describes it whole)."""


def _split(values: Sequence[str] | None) -> list[str]:
    """Repeated and comma-separated values (`--event FAILED,CANCELED --event LOST`), in order, once each."""
    return list(dict.fromkeys(v.strip() for text in values or [] for v in text.split(",") if v.strip()))


def _label_matcher(text: str) -> dict[str, Any]:
    """`K=V` (equals), `K!=V` (not-equals), `K=~REGEX` (matches the whole value); presence is
    `--label-exists K`."""
    from jobwatch.app.registration import RegistrationRefused

    key, sep, value = text.partition("=")
    if not sep or not key or key == "!":
        raise RegistrationRefused(
            f"label matcher {text!r} must be K=V, K!=V or K=~REGEX (presence: --label-exists K)",
            field="match.labels",
        )
    if key.endswith("!"):
        return {"key": key[:-1], "op": "not-equals", "value": value}
    if value.startswith("~"):
        return {"key": key, "op": "matches", "value": value[1:]}
    return {"key": key, "op": "equals", "value": value}


def _route_match(args: argparse.Namespace) -> dict[str, Any]:
    match: dict[str, Any] = {}
    for flag, field in (("source", "sources"), ("event", "events"), ("severity", "severities")):
        values = _split(getattr(args, flag))
        if values:
            match[field] = values
    labels = [_label_matcher(text) for text in args.label or []]
    labels += [{"key": key, "op": "exists"} for key in args.label_exists or []]
    if labels:
        match["labels"] = labels
    return match


def _needs(values: Sequence[str] | None, secret: str | None, flag: str, secret_flag: str) -> None:
    from jobwatch.app.registration import RegistrationRefused

    if values and not secret:
        raise RegistrationRefused(f"--{flag} needs --{secret_flag}", field="destinations")


def _route_destinations(args: argparse.Namespace) -> list[dict[str, Any]]:
    from jobwatch.domain.routing import DEFAULT_WEBHOOK_MARKER

    _needs(args.slack_app, args.token_secret, "slack-app", "token-secret")
    _needs(args.webhook, args.signing_secret, "webhook", "signing-secret")
    found: list[dict[str, Any]] = [
        {"type": "slack-app", "channel": c, "tokenSecret": args.token_secret} for c in args.slack_app or []
    ]
    found += [{"type": "slack-webhook", "webhookSecret": s} for s in args.slack_webhook_secret or []]
    if args.default_slack:
        found.append({"type": "slack-webhook", "webhookSecret": DEFAULT_WEBHOOK_MARKER})
    if args.email:
        found.append({"type": "email", "addresses": list(args.email)})
    if args.default_email:
        found.append({"type": "email"})
    found += [{"type": "eventbridge", "bus": bus} for bus in args.eventbridge or []]
    found += [{"type": "webhook", "url": u, "signingSecret": args.signing_secret} for u in args.webhook or []]
    return found


def _route_mentions(pairs: Sequence[str] | None) -> dict[str, list[str]]:
    from jobwatch.app.registration import RegistrationRefused

    mentions: dict[str, list[str]] = {}
    for pair in pairs or []:
        events, sep, mention = pair.partition("=")
        if not sep or not events or not mention:
            raise RegistrationRefused(f"--mention {pair!r} must look like EVENT=MENTION", field="mentions")
        for event in _split([events]):
            mentions.setdefault(event, []).append(mention)
    return mentions


def _route_from_flags(args: argparse.Namespace) -> dict[str, Any]:
    doc: dict[str, Any] = {"name": args.name, "match": _route_match(args)}
    doc["destinations"] = _route_destinations(args)
    if args.mention:
        doc["mentions"] = _route_mentions(args.mention)
    if args.stop:
        doc["continue"] = False
    if args.position is not None:
        doc["position"] = args.position
    return doc


class _FileProblem(Exception):
    """A routes file that cannot be read or is not YAML: one line, exit 2."""


def _load_yaml(path: str) -> Any:
    import yaml

    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise _FileProblem(f"{path}: cannot read: {exc.__class__.__name__}: {exc}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise _FileProblem(f"{path}: not valid YAML: {' '.join(str(exc).split())}") from None


def _route_from_file(args: argparse.Namespace) -> Any:
    given = [flag for flag in ROUTE_FLAGS if getattr(args, flag) not in (None, False, [])]
    if given:
        flags = ", ".join("--" + flag.replace("_", "-") for flag in given)
        raise _FileProblem(f"--file describes the whole route: leave out {flags}")
    doc = _load_yaml(args.file)
    if isinstance(doc, dict) and args.name is not None and doc.get("name", args.name) != args.name:
        raise _FileProblem(f"{args.file}: the route is named {doc.get('name')!r}, not {args.name!r}")
    if isinstance(doc, dict) and "name" not in doc and args.name is not None:
        doc = {"name": args.name, **doc}
    return doc


def _refusal_lines(exc: RegistrationError, label: Callable[[str], str] = lambda field: field) -> list[str]:
    """One line per problem of a route document (it can have several); a flag mistake is one line."""
    from jobwatch.app.registration import Refusals

    if not isinstance(exc, Refusals):
        return [str(exc)]
    return [f"{label(problem.field)}: {problem.message}" for problem in exc.problems()]


def _subscription_lines(changes: SubscriptionChanges) -> list[str]:
    lines = [
        f"  + {c.address}  {', '.join(c.destinations)}  (subscribed: the address confirms once)"
        for c in changes.subscribed
    ]
    lines += [f"  ~ {c.address}  {', '.join(c.destinations)}  (filter updated)" for c in changes.updated]
    lines += [f"  - {address}  (no route names it: unsubscribed)" for address in changes.unsubscribed]
    lines += [
        f"  ? {address}  (has not confirmed yet: SNS allows no change before)" for address in changes.pending
    ]
    return ["e-mail subscriptions:", *lines] if lines else []


def cmd_route_add(args: argparse.Namespace) -> int:
    from jobwatch.app.operations import SubscriptionsFailed
    from jobwatch.app.registration import parse_all
    from jobwatch.domain.routing import Route

    if args.name is None and not args.file:
        return _fail("route add needs a NAME (or --file with a named route)")
    name = args.name
    try:
        doc = _route_from_file(args) if args.file else _route_from_flags(args)
        name = doc.get("name", name) if isinstance(doc, dict) else name
        route = parse_all(Route, doc, "invalid route")
        stored, created, changes = _operations().put_route(
            route, _actor(), allow_missing_secret=args.allow_missing_secret
        )
    except _FileProblem as exc:
        return _fail(str(exc))
    except RegistrationError as exc:
        for line in _refusal_lines(exc):
            print(f"jobwatch: route {name!r} refused, nothing written: {line}", file=sys.stderr)
        return EXIT_USAGE
    except SubscriptionsFailed as exc:
        return _fail(str(exc), 1)
    print(f"{'added' if created else 'replaced'} route {stored.name} (position {stored.position})")
    for line in _subscription_lines(changes):
        print(line)
    return 0


def _match_text(route: Route) -> str:
    match = route.match
    parts = [
        f"{field}={','.join(values)}"
        for field, values in (
            ("sources", match.sources),
            ("events", match.events),
            ("severities", match.severities),
        )
        if values is not None
    ]
    parts += [label.describe().removeprefix("label ") for label in match.labels]
    return " ".join(parts) or "(everything)"


def _route_rows(routes: Sequence[Route]) -> list[list[str]]:
    rows = [["NAME", "POS", "MATCH", "DESTINATIONS", "THEN"]]
    for route in routes:
        then = "continue" if route.continue_ else "stop"
        destinations = ",".join(d.id for d in route.destinations)
        rows.append([route.name, str(route.position), _match_text(route), destinations, then])
    return rows


def cmd_route_list(args: argparse.Namespace) -> int:
    listing = _operations().list_routes()
    if args.json:
        _print_json(listing.to_wire())
        return 0
    if listing.defaults is not None:
        print("no routes stored: the deployment's default routes apply")
        _table(_route_rows(listing.defaults))
        return 0
    _table(_route_rows(listing.routes))
    return 0


def cmd_route_show(args: argparse.Namespace) -> int:
    import yaml

    route = _operations().show_route(args.name)
    if route is None:
        return _fail(f"no route {args.name!r}", EXIT_NOT_FOUND)
    if args.json:
        _print_json(route.to_wire())
    else:
        print(yaml.safe_dump(route.to_wire(), sort_keys=False, allow_unicode=False).rstrip("\n"))
    return 0


def cmd_route_remove(args: argparse.Namespace) -> int:
    from jobwatch.app.operations import SubscriptionsFailed

    try:
        removed = _operations().remove_route(args.name, _actor())
    except SubscriptionsFailed as exc:
        return _fail(str(exc), 1)
    if not removed:
        return _fail(f"no route {args.name!r}", EXIT_NOT_FOUND)
    print(f"removed route {args.name}")
    return 0


def _routes_document(data: Any) -> Any:
    """A routes file is a list of routes; `{"routes": [...]}` (the API's body) is accepted too."""
    return {"routes": data} if isinstance(data, list) else data


def _route_label(raw: Any) -> Callable[[str], str]:
    """`routes.2.destinations.0.url` -> `route 'team-b' (#3): destinations.0.url`."""
    routes = raw.get("routes") if isinstance(raw, dict) else None

    def label(field: str) -> str:
        head, index, rest = _parts(field)
        if head != "routes" or not index.isdigit():
            return field
        position = int(index)
        entry = routes[position] if isinstance(routes, list) and position < len(routes) else None
        name = entry.get("name") if isinstance(entry, dict) else None
        return f"route {name!r} (#{position + 1})" + (f": {rest}" if rest else "")

    return label


def _parts(field: str) -> tuple[str, str, str]:
    """`routes.2.destinations.0.url` -> (`routes`, `2`, `destinations.0.url`)."""
    head, _, tail = field.partition(".")
    index, _, rest = tail.partition(".")
    return head, index, rest


def _diff_lines(diff: RoutesDiff) -> list[str]:
    lines = [f"+ {name}" for name in diff.added]
    lines += [f"~ {change.name}  ({', '.join(change.fields)})" for change in diff.changed]
    lines += [f"- {name}" for name in diff.removed]
    lines += [f"= {name}" for name in diff.unchanged]
    lines += _subscription_lines(diff.subscriptions)
    counts = (
        f"{len(diff.added)} added, {len(diff.changed)} changed, {len(diff.removed)} removed, "
        f"{len(diff.unchanged)} unchanged"
    )
    lines.append(f"dry run, nothing written: {counts}" if diff.dry_run else f"applied: {counts}")
    return lines


def cmd_routes_apply(args: argparse.Namespace) -> int:
    from jobwatch.app.models import RoutesApply
    from jobwatch.app.operations import SubscriptionsFailed
    from jobwatch.app.registration import parse_all

    raw: Any = None
    try:
        raw = _routes_document(_load_yaml(args.file))
        if not isinstance(raw, dict) or "routes" not in raw:
            raise _FileProblem(f"{args.file}: must be a list of routes (or a mapping with `routes:`)")
        wanted = parse_all(RoutesApply, raw, "invalid routes")
        diff = _operations().apply_routes(
            wanted, dry_run=args.dry_run, actor=_actor(), allow_missing_secret=args.allow_missing_secret
        )
    except _FileProblem as exc:
        return _fail(str(exc))
    except RegistrationError as exc:
        for line in _refusal_lines(exc, _route_label(raw)):
            print(f"jobwatch: {args.file}: {line}", file=sys.stderr)
        print(f"jobwatch: {args.file}: refused, nothing written", file=sys.stderr)
        return EXIT_USAGE
    except SubscriptionsFailed as exc:
        return _fail(str(exc), 1)
    if args.json:
        _print_json(diff.to_wire())
        return 0
    for line in _diff_lines(diff):
        print(line)
    return 0


def _explanation_lines(explanation: Explanation) -> list[str]:
    lines = [f"job {explanation.job_key}, event {explanation.event.value} (severity {explanation.severity})"]
    if not explanation.published:
        lines.append(
            f"note: the job's notify.events leaves {explanation.event.value} out: the poller does not "
            "publish it, so it goes nowhere"
        )
    lines.append(
        "routes: the deployment's defaults (no route is stored)" if explanation.defaults else "routes:"
    )
    width = max((len(v.route) for v in explanation.routes), default=0)
    for verdict in explanation.routes:
        state = "skipped" if verdict.skipped else "matched" if verdict.matched else "not matched"
        why = "; ".join(verdict.reasons)
        if verdict.stopped_here:
            why += "; continue: false, later routes are skipped"
        lines.append(f"  {verdict.route.ljust(width)}  {state:<11}  {why}")
    lines.append("deliveries:" if explanation.deliveries else "deliveries: none")
    for delivery in explanation.deliveries:
        mentions = f"  mentions {' '.join(delivery.mentions)}" if delivery.mentions else ""
        lines.append(f"  {delivery.id}  ({delivery.type})  via {', '.join(delivery.routes)}{mentions}")
    return lines


def cmd_routes_explain(args: argparse.Namespace) -> int:
    from jobwatch.domain.model import Event

    explanation = _operations().explain(args.job, Event(args.event))
    if explanation is None:
        return _fail(f"no tracked job {args.job!r}", EXIT_NOT_FOUND)
    if args.json:
        _print_json(explanation.to_wire())
        return 0
    for line in _explanation_lines(explanation):
        print(line)
    return 0


def _add_route_parsers(sub: Any) -> None:
    from jobwatch.domain.model import Event
    from jobwatch.domain.severity import SEVERITIES

    events = [event.value for event in Event]
    p = sub.add_parser("route", help="manage routes: which transitions go where (same as /routes)")
    route_sub = p.add_subparsers(dest="route_command", required=True)

    p = route_sub.add_parser(
        "add",
        help="create or replace one route (same as POST /routes)",
        description="Create or replace one route, from flags or from --file (one route in the wire format).",
    )
    p.add_argument("name", nargs="?", help="route name (lower case, digits, dashes)")
    p.add_argument(
        "--file", metavar="ROUTE.yaml", help="the whole route as YAML (the API's JSON is YAML too)"
    )
    p.add_argument("--source", action="append", metavar="SOURCE", help="match: job source (repeatable)")
    p.add_argument(
        "--label",
        action="append",
        metavar="K=V|K!=V|K=~RE",
        help="match: label equals, differs (or is absent), or fully matches a regular expression",
    )
    p.add_argument("--label-exists", action="append", metavar="K", help="match: the job has label K")
    p.add_argument("--event", action="append", metavar="EVENT", help=f"match: event ({', '.join(events)})")
    p.add_argument(
        "--severity", action="append", metavar="S", help=f"match: severity ({', '.join(SEVERITIES)})"
    )
    p.add_argument(
        "--slack-app", action="append", metavar="CHANNEL", help="destination: Slack channel id (bot)"
    )
    p.add_argument("--token-secret", metavar="NAME", help="secret of the bot token, for --slack-app")
    p.add_argument(
        "--slack-webhook-secret", action="append", metavar="NAME", help="destination: Slack webhook"
    )
    p.add_argument("--default-slack", action="store_true", help="destination: the deployment's Slack webhook")
    p.add_argument(
        "--email", action="append", metavar="ADDRESS", help="destination: e-mail addresses (one set)"
    )
    p.add_argument("--default-email", action="store_true", help="destination: the alert topic's subscribers")
    p.add_argument("--eventbridge", action="append", metavar="BUS", help="destination: EventBridge bus")
    p.add_argument("--webhook", action="append", metavar="URL", help="destination: signed https webhook")
    p.add_argument("--signing-secret", metavar="NAME", help="secret of the signing key, for --webhook")
    p.add_argument("--mention", action="append", metavar="EVENT=MENTION", help="Slack mention for an event")
    p.add_argument("--stop", action="store_true", help="continue: false (later routes are not tried)")
    p.add_argument("--position", type=int, metavar="N", help="evaluation order (default: keep, or last)")
    p.add_argument("--allow-missing-secret", action="store_true", help="accept secrets that do not exist yet")
    p.set_defaults(func=cmd_route_add)

    p = route_sub.add_parser("list", help="the routes in evaluation order (same as GET /routes)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_route_list)

    p = route_sub.add_parser("show", help="one route as YAML (same as GET /routes/NAME)")
    p.add_argument("name")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_route_show)

    p = route_sub.add_parser("remove", help="remove one route (same as DELETE /routes/NAME)")
    p.add_argument("name")
    p.set_defaults(func=cmd_route_remove)

    p = sub.add_parser("routes", help="apply a routes file, explain where a job's transition goes")
    routes_sub = p.add_subparsers(dest="routes_command", required=True)
    p = routes_sub.add_parser(
        "apply",
        help="make the stored routes exactly those of a YAML file (same as PUT /routes)",
        description="The file is a YAML list of routes in the wire format (docs/openapi.json, Route); "
        "each route's position is its place in the list. Prints + added, ~ changed (fields), - removed, "
        "= unchanged. Applying the same file again changes nothing.",
    )
    p.add_argument("file", metavar="ROUTES.yaml")
    p.add_argument("--dry-run", action="store_true", help="print the diff, write nothing")
    p.add_argument("--allow-missing-secret", action="store_true", help="accept secrets that do not exist yet")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_routes_apply)

    p = routes_sub.add_parser(
        "explain", help="where a transition of a tracked job would go (same as GET /jobs/KEY/routes)"
    )
    p.add_argument("job", metavar="JOB", help="the job key")
    p.add_argument("--event", required=True, choices=events)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_routes_explain)


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
    p.add_argument("--template", default="template.yaml")
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
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("track", help="start tracking a job (same as POST /jobs)")
    _add_job_arguments(p)
    _add_registration_arguments(p)
    p.set_defaults(func=cmd_track)

    p = sub.add_parser("list", help="tracked jobs and their phase (same as GET /jobs)")
    p.add_argument("--phase", choices=[phase.value for phase in Phase])
    p.add_argument("--source", help="only jobs of this source")
    p.add_argument("--label", action="append", metavar="K=V", help="only jobs with this label (repeatable)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("show", help="one job with its recent transitions (same as GET /jobs/KEY)")
    p.add_argument("key")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("untrack", help="stop tracking a job (same as DELETE /jobs/KEY)")
    p.add_argument("key")
    p.set_defaults(func=cmd_untrack)

    p = sub.add_parser("test", help="send a test notification for a job (same as POST /jobs/KEY/test)")
    p.add_argument("key")
    p.set_defaults(func=cmd_test)

    p = sub.add_parser("watch", help="auto-discover a cluster's or backend's jobs (same as POST /watches)")
    p.add_argument("kind", choices=WATCH_KINDS)
    p.add_argument("--endpoint", required=True, help="API base URL (https; http only for loopback)")
    p.add_argument("--cluster-id", help="Zilliz Cloud cluster id (zilliz-cloud-v1/v2)")
    p.add_argument("--backend", help="Weaviate backup backend (weaviate-backups)")
    p.add_argument("--db-name", help="Milvus database (milvus)")
    _add_registration_arguments(p)
    p.set_defaults(func=cmd_watch)

    p = sub.add_parser("unwatch", help="remove a watch (same as DELETE /watches/ID)")
    p.add_argument("id")
    p.set_defaults(func=cmd_unwatch)

    p = sub.add_parser("watches", help="list watches (same as GET /watches)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_watches)

    p = sub.add_parser("discover", help="list every watch once and track new jobs")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_discover)

    p = sub.add_parser("api", help="the registration API")
    api_sub = p.add_subparsers(dest="api_command", required=True)
    p = api_sub.add_parser("serve", help="serve the API handler over HTTP on 127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.set_defaults(func=cmd_api_serve)

    p = sub.add_parser("poll", help="run one poll cycle (the poller function's code path)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_poll)

    p = sub.add_parser("deliver", help="drain the Slack and e-mail queues once (the senders' code paths)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_deliver)

    p = sub.add_parser("run", help="poll and deliver in a loop")
    p.add_argument("--interval", type=float, default=60.0)
    p.add_argument("--cycles", type=int, help="stop after this many cycles")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_run)

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
