"""`jobwatch route add|list|show|remove` and `jobwatch routes apply|explain`: routes from flags or a
file, through the same operations and validation as the HTTP API's /routes."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jobwatch.domain.errors import RegistrationError
from jobwatch_tools.output import EXIT_NOT_FOUND, EXIT_USAGE, JSON_HELP, print
from jobwatch_tools.output import actor as _actor
from jobwatch_tools.output import fail as _fail
from jobwatch_tools.output import operations as _operations
from jobwatch_tools.output import print_json as _print_json
from jobwatch_tools.output import table as _table

if TYPE_CHECKING:
    from jobwatch.app.models import Explanation, RoutesDiff, SubscriptionChanges
    from jobwatch.domain.routing import Route

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


def add_route_parsers(sub: Any) -> None:
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
    p.add_argument("--json", action="store_true", help=JSON_HELP)
    p.set_defaults(func=cmd_route_list)

    p = route_sub.add_parser("show", help="one route as YAML (same as GET /routes/NAME)")
    p.add_argument("name", help="route name")
    p.add_argument("--json", action="store_true", help=JSON_HELP)
    p.set_defaults(func=cmd_route_show)

    p = route_sub.add_parser("remove", help="remove one route (same as DELETE /routes/NAME)")
    p.add_argument("name", help="route name")
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
    p.add_argument("file", metavar="ROUTES.yaml", help="YAML list of routes (the wire format)")
    p.add_argument("--dry-run", action="store_true", help="print the diff, write nothing")
    p.add_argument("--allow-missing-secret", action="store_true", help="accept secrets that do not exist yet")
    p.add_argument("--json", action="store_true", help=JSON_HELP)
    p.set_defaults(func=cmd_routes_apply)

    p = routes_sub.add_parser(
        "explain", help="where a transition of a tracked job would go (same as GET /jobs/KEY/routes)"
    )
    p.add_argument("job", metavar="JOB", help="the job key")
    p.add_argument("--event", required=True, choices=events, help="the transition's event")
    p.add_argument("--json", action="store_true", help=JSON_HELP)
    p.set_defaults(func=cmd_routes_explain)
