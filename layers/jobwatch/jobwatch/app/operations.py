"""What the registration API and the CLI do, written once.

`jobwatch.api.routes` (HTTP) and `jobwatch_tools.cli` (terminal) both parse their input into the models
of `jobwatch.app.models` and call these methods; neither talks to the stores or validates on its own.
So `POST /jobs` and `jobwatch track`, `GET /jobs` and `jobwatch list`, and so on, cannot drift.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from jobwatch.app.models import (
    AddressChange,
    DeliveryView,
    Explanation,
    FieldProblem,
    JobList,
    JobRegistration,
    JobResource,
    RouteChange,
    RouteList,
    RoutesApply,
    RoutesDiff,
    RouteVerdict,
    SubscriptionChanges,
    TestNotification,
    WatchList,
    WatchRegistration,
)
from jobwatch.app.quieting import QUIET_ATTEMPTS as QUIET_ATTEMPTS  # re-exported: tests, the API
from jobwatch.app.quieting import QuietConflict as QuietConflict
from jobwatch.app.quieting import change_quiet
from jobwatch.app.registration import (
    Refusals,
    RegistrationRefused,
    build_spec,
    build_watch,
    destination_conflicts,
    duplicate_names,
    route_problems,
)
from jobwatch.domain import quiet
from jobwatch.domain.endpoints import EndpointPolicy
from jobwatch.domain.model import Event, Phase, Quiet, Snapshot, TrackedJob, Transition, Watch
from jobwatch.domain.routing import MAX_ROUTES, EmailDestination, Route, default_routes, evaluate, ordered
from jobwatch.domain.severity import severity_for
from jobwatch.observability import logger
from jobwatch.ports import (
    Clock,
    EmailSubscriptions,
    JobStore,
    Publisher,
    RouteStore,
    SecretNames,
    WatchStore,
)
from jobwatch.settings import ApiSettings

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
LISTING_BATCH = 100
"""Jobs read per store call while listing (one index query and one BatchGetItem of up to 100)."""
MAX_EXAMINED = 1000
"""Jobs one `GET /jobs` call reads at most, matching or not: bounds its time and read units."""


class BadToken(ValueError):
    """A `nextToken` this API did not hand out."""


def _encode_token(created_at: str, key: str) -> str:
    raw = json.dumps([created_at, key], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _listed(job: TrackedJob, phase: Phase | None, source: str | None, labels: Mapping[str, str]) -> bool:
    """Whether the job passes the listing's filters (they combine: AND)."""
    if phase is not None and (job.snapshot is None or job.snapshot.phase != phase):
        return False
    if source is not None and job.spec.source != source:
        return False
    return all(job.spec.labels.get(k) == v for k, v in labels.items())


def _decode_token(token: str) -> tuple[str, str]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        created_at, key = json.loads(raw)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise BadToken("nextToken is not one this API returned") from exc
    if not isinstance(created_at, str) or not isinstance(key, str):
        raise BadToken("nextToken is not one this API returned")
    return created_at, key


def parse_label_filters(labels: Sequence[str]) -> dict[str, str]:
    """`k=v` filters (all must match); a filter without `=` is refused, not ignored."""
    wanted: dict[str, str] = {}
    for text in labels:
        key, sep, value = text.partition("=")
        if not sep or not key:
            raise RegistrationRefused(f"label filter {text!r} must look like key=value", field="label")
        wanted[key] = value
    return wanted


def _not_polled() -> Snapshot:
    return Snapshot(phase=Phase.PENDING, status="not polled yet")


def missing_secret_message(name: str, before: str = "the first poll") -> str:
    return (
        f"secret {name!r} does not exist in Secrets Manager: create it first, or register with "
        f"allowMissingSecret (CLI: --allow-missing-secret) to accept it now and add it before {before}"
    )


class SubscriptionsFailed(Exception):
    """The routes were written but SNS refused a change of the e-mail subscriptions (applying the
    same routes again finishes the job: the subscriptions are compared with what SNS holds)."""


def _wanted_addresses(routes: Sequence[Route]) -> dict[str, tuple[str, ...]]:
    """Address -> the ids of every e-mail destination (with addresses) that lists it."""
    wanted: dict[str, set[str]] = {}
    for route in routes:
        for destination in route.destinations:
            if isinstance(destination, EmailDestination):
                for address in destination.addresses:
                    wanted.setdefault(address, set()).add(destination.id)
    return {address: tuple(sorted(ids)) for address, ids in sorted(wanted.items())}


def _subscription_plan(
    wanted: dict[str, tuple[str, ...]], current: dict[str, tuple[str, ...] | None]
) -> SubscriptionChanges:
    """What makes the topic's route subscriptions match the routes (pending ones cannot be changed)."""
    plan = SubscriptionChanges()
    for address, ids in wanted.items():
        if address not in current:
            plan.subscribed.append(AddressChange(address=address, destinations=list(ids)))
        elif current[address] is None:
            plan.pending.append(address)
        elif tuple(sorted(current[address] or ())) != ids:
            plan.updated.append(AddressChange(address=address, destinations=list(ids)))
    plan.unsubscribed.extend(
        sorted(address for address, ids in current.items() if address not in wanted and ids is not None)
    )
    return plan


def _changed_fields(stored: Route, wanted: Route) -> list[str]:
    old, new = stored.to_wire(), wanted.to_wire()
    return [name for name in new if old.get(name) != new[name]]


def _diff(
    stored: Sequence[Route], wanted: Sequence[Route]
) -> tuple[list[str], list[RouteChange], list[str], list[str]]:
    """(added, changed, removed, unchanged) by name."""
    before = {route.name: route for route in stored}
    added, changed, unchanged = [], [], []
    for route in wanted:
        old = before.get(route.name)
        if old is None:
            added.append(route.name)
        elif fields := _changed_fields(old, route):
            changed.append(RouteChange(name=route.name, fields=fields))
        else:
            unchanged.append(route.name)
    names = {route.name for route in wanted}
    removed = [route.name for route in stored if route.name not in names]
    return added, changed, removed, unchanged


@dataclass
class Operations:
    settings: ApiSettings
    store: JobStore
    watches: WatchStore
    publisher: Publisher
    policy: EndpointPolicy
    clock: Clock
    secret_names: SecretNames
    routes: RouteStore
    email_subscriptions: EmailSubscriptions | None = None
    """None when the deployment gives the API no alert e-mail topic: addresses are refused then."""

    # -- jobs ------------------------------------------------------------------------------------------

    def check_secret(self, name: str | None, allow_missing: bool) -> None:
        """Refuse a secret name that does not exist, unless the caller accepts it (and is warned)."""
        if name is None or self.secret_names.exists(name):
            return
        if allow_missing:
            logger.warning("registered with a secret that does not exist yet", extra={"secretName": name})
            return
        raise RegistrationRefused(missing_secret_message(name), field="secretName")

    def track(self, registration: JobRegistration, actor: str = "unknown") -> tuple[JobResource, bool]:
        """Validate (SSRF guard included) and store; (resource, created). Refusals write nothing."""
        spec = build_spec(registration, self.policy)
        self.check_secret(spec.secret_name, registration.allow_missing_secret)
        job, created = self.store.add_job(spec, self.clock.now_iso())
        logger.info(
            "job tracked" if created else "job already tracked",
            extra={
                "jobKey": job.key,
                "jobId": spec.job_id,
                "source": spec.source,
                "endpoint": spec.endpoint,
                "secretName": spec.secret_name,
                "actor": actor,
            },
        )
        return JobResource.of(job), created

    def show(self, key: str) -> JobResource | None:
        job = self.store.get_job(key)
        if job is None:
            return None
        return JobResource.of(job, self.store.recent_transitions(key), now_iso=self.clock.now_iso())

    def list_jobs(
        self,
        *,
        phase: Phase | None = None,
        source: str | None = None,
        labels: Sequence[str] = (),
        limit: int = DEFAULT_PAGE_SIZE,
        next_token: str | None = None,
    ) -> JobList:
        """Filtered, oldest first, read through the creation index (no Scan, D42).

        One call examines at most `MAX_EXAMINED` jobs, so a filter that matches few of many jobs
        answers in bounded time with a short (even empty) page and a token: a client follows tokens
        until there is none. The token is the (createdAt, key) of the last job examined."""
        wanted = parse_label_filters(labels)
        cursor = _decode_token(next_token) if next_token else None
        limit = max(1, min(limit, MAX_PAGE_SIZE))
        page: list[TrackedJob] = []
        examined = 0
        while len(page) < limit and examined < MAX_EXAMINED:
            asked = min(LISTING_BATCH, MAX_EXAMINED - examined)
            batch, resume = self.store.jobs_by_creation(cursor, asked)
            examined += asked
            for index, job in enumerate(batch):
                if _listed(job, phase, source, wanted):
                    page.append(job)
                if len(page) == limit and index < len(batch) - 1:
                    resume = (job.created_at, job.key)  # the page is full: go on after this one
                    break
            cursor = resume
            if cursor is None:
                break
        token = _encode_token(*cursor) if cursor is not None else None
        now_iso = self.clock.now_iso()
        return JobList(jobs=[JobResource.of(job, now_iso=now_iso) for job in page], next_token=token)

    def untrack(self, key: str, actor: str = "unknown") -> bool:
        deleted = self.store.delete_job(key)
        if deleted:
            logger.info("job untracked", extra={"jobKey": key, "actor": actor})
        return deleted

    # -- snooze and mute (domain.quiet) ------------------------------------------------------------------

    def snooze(self, key: str, seconds: float, actor: str = "unknown") -> JobResource | None:
        """Only urgent events are published for `seconds` from now; None when no such job."""
        return self._change_quiet(key, lambda q, now: quiet.snooze(q, now, seconds, actor), actor, "snoozed")

    def unsnooze(self, key: str, actor: str = "unknown") -> JobResource | None:
        return self._change_quiet(key, lambda q, _now: quiet.unsnooze(q), actor, "snooze ended")

    def mute(self, key: str, actor: str = "unknown") -> JobResource | None:
        """Nothing is published for the job until it is unmuted."""
        return self._change_quiet(key, lambda q, _now: quiet.mute(q, actor), actor, "muted")

    def unmute(self, key: str, actor: str = "unknown") -> JobResource | None:
        return self._change_quiet(key, lambda q, _now: quiet.unmute(q), actor, "unmuted")

    def _change_quiet(
        self, key: str, change: Callable[[Quiet, str], Quiet], actor: str, what: str
    ) -> JobResource | None:
        """`app.quieting.change_quiet`: the same read-change-write as the Slack buttons'."""
        saved = change_quiet(self.store, self.clock, key, change, actor, what)
        return None if saved is None else JobResource.of(saved, now_iso=self.clock.now_iso())

    def send_test(self, key: str) -> TestNotification | None:
        """Publish a TEST transition for the job through SNS (email + Slack); nothing is stored."""
        job = self.store.get_job(key)
        if job is None:
            return None
        current = job.snapshot or _not_polled()
        transition = Transition(
            transition_id=f"{key}#test-{uuid.uuid4()}",
            job_key=key,
            source=job.spec.source,
            job_id=job.spec.job_id,
            event=Event.TEST,
            severity=severity_for(Event.TEST),
            occurred_at=self.clock.now_iso(),
            job=job.spec,
            previous=job.snapshot,
            current=current,
        )
        message_id = self.publisher.publish(transition)
        logger.info(
            "test notification published", extra={"jobKey": key, "transitionId": transition.transition_id}
        )
        return TestNotification(transition_id=transition.transition_id, message_id=message_id)

    # -- watches ---------------------------------------------------------------------------------------

    def add_watch(self, registration: WatchRegistration, actor: str = "unknown") -> tuple[Watch, bool]:
        watch = build_watch(registration, self.policy, self.clock.now_iso())
        self.check_secret(watch.secret_name, registration.allow_missing_secret)
        watch, created = self.watches.add(watch)
        logger.info(
            "watch added" if created else "watch already exists",
            extra={"watchId": watch.id, "endpoint": watch.endpoint, "actor": actor},
        )
        return watch, created

    def list_watches(self) -> WatchList:
        return WatchList(watches=self.watches.list())

    def remove_watch(self, watch_id: str, actor: str = "unknown") -> bool:
        removed = self.watches.delete(watch_id)
        if removed:
            logger.info("watch removed", extra={"watchId": watch_id, "actor": actor})
        return removed

    # -- routes ----------------------------------------------------------------------------------------

    def list_routes(self) -> RouteList:
        stored = self.routes.list()
        defaults = None if stored else default_routes(self.settings.alert_email_events)
        return RouteList(routes=stored, defaults=defaults)

    def show_route(self, name: str) -> Route | None:
        return self.routes.get(name)

    def _missing(self, allow_missing: bool) -> Callable[[str], str | None]:
        def missing(name: str) -> str | None:
            if self.secret_names.exists(name):
                return None
            if allow_missing:
                logger.warning("route names a secret that does not exist yet", extra={"secretName": name})
                return None
            return missing_secret_message(name, "the first delivery")

        return missing

    def _problems(self, route: Route, where: str, allow_missing: bool) -> list[FieldProblem]:
        email_topic = self.email_subscriptions is not None
        missing = self._missing(allow_missing)
        buses = self.settings.event_buses
        return route_problems(route, where, self.policy, missing, email_topic, buses)

    def put_route(
        self, route: Route, actor: str = "unknown", *, allow_missing_secret: bool = False
    ) -> tuple[Route, bool, SubscriptionChanges]:
        """Create or replace one route; (route, created, e-mail subscription changes). A route given
        without `position` keeps its place, or goes last when new. Refusals write nothing."""
        stored = self.routes.list()
        existing = next((r for r in stored if r.name == route.name), None)
        others = [r for r in stored if r.name != route.name]
        problems = self._problems(route, "", allow_missing_secret)
        problems += destination_conflicts([("", route)], others)
        if existing is None and len(stored) >= MAX_ROUTES:
            problems.append(
                FieldProblem(field="name", message=f"at most {MAX_ROUTES} routes: remove one first")
            )
        if problems:
            raise Refusals(f"invalid route {route.name!r}", problems)
        if "position" not in route.model_fields_set:
            position = existing.position if existing else max((r.position + 1 for r in stored), default=0)
            route = route.model_copy(update={"position": position})
        created = self.routes.put(route)
        logger.info(
            "route added" if created else "route replaced", extra={"route": route.name, "actor": actor}
        )
        return route, created, self._sync_subscriptions(ordered([*others, route]), dry_run=False)

    def remove_route(self, name: str, actor: str = "unknown") -> bool:
        removed = self.routes.delete(name)
        if removed:
            logger.info("route removed", extra={"route": name, "actor": actor})
            self._sync_subscriptions(self.routes.list(), dry_run=False)
        return removed

    def _apply_problems(self, routes: Sequence[Route], allow_missing: bool) -> list[FieldProblem]:
        problems = duplicate_names(routes)
        if len(routes) > MAX_ROUTES:
            problems.append(FieldProblem(field="routes", message=f"at most {MAX_ROUTES} routes"))
        for index, route in enumerate(routes):
            problems += self._problems(route, f"routes.{index}", allow_missing)
        problems += destination_conflicts([(f"routes.{i}", r) for i, r in enumerate(routes)])
        return problems

    def apply_routes(
        self,
        routes: Sequence[Route] | RoutesApply,
        *,
        dry_run: bool,
        actor: str = "unknown",
        allow_missing_secret: bool = False,
    ) -> RoutesDiff:
        """Make the stored routes exactly `routes` (position = place in the list). Idempotent: the same
        set applied again changes nothing. A refused set writes nothing; a dry run writes nothing."""
        given = routes.routes if isinstance(routes, RoutesApply) else list(routes)
        problems = self._apply_problems(given, allow_missing_secret)
        if problems:
            raise Refusals("invalid routes", problems)
        wanted = [route.model_copy(update={"position": index}) for index, route in enumerate(given)]
        stored = self.routes.list()
        added, changed, removed, unchanged = _diff(stored, wanted)
        if not dry_run:
            touched = set(added) | {change.name for change in changed}
            for route in wanted:
                if route.name in touched:
                    self.routes.put(route)
            for name in removed:
                self.routes.delete(name)
        subscriptions = self._sync_subscriptions(wanted, dry_run=dry_run)
        logger.info(
            "routes applied" if not dry_run else "routes dry run",
            extra={"added": added, "changed": [c.name for c in changed], "removed": removed, "actor": actor},
        )
        return RoutesDiff(
            dry_run=dry_run,
            added=added,
            changed=changed,
            removed=removed,
            unchanged=unchanged,
            subscriptions=subscriptions,
        )

    def _sync_subscriptions(self, routes: Sequence[Route], *, dry_run: bool) -> SubscriptionChanges:
        """Subscribe the addresses the routes name, re-point those whose destinations changed, and
        unsubscribe those no route names; the current state is read from SNS each time."""
        subscriptions = self.email_subscriptions
        if subscriptions is None:
            return SubscriptionChanges()
        try:
            plan = _subscription_plan(_wanted_addresses(routes), subscriptions.subscribed())
            if not dry_run:
                for change in [*plan.subscribed, *plan.updated]:
                    subscriptions.subscribe(change.address, change.destinations)
                for address in plan.unsubscribed:
                    subscriptions.unsubscribe(address)
        except Exception as exc:
            logger.exception("e-mail subscriptions not updated")
            raise SubscriptionsFailed(
                f"e-mail subscriptions not updated ({type(exc).__name__}); the routes are written: "
                "apply them again to finish"
            ) from exc
        return plan

    def explain(self, job_key: str, event: Event | str) -> Explanation | None:
        """Where a transition of a tracked job would go now: each route's verdict and the deliveries."""
        job = self.store.get_job(job_key)
        if job is None:
            return None
        name = str(event)
        stored = self.routes.list()
        routes = stored or default_routes(self.settings.alert_email_events)
        deliveries, verdicts = evaluate(routes, job.spec, name)
        allowed = job.spec.notify.events if job.spec.notify else None
        return Explanation(
            job_key=job_key,
            event=Event(name),
            severity=severity_for(name),
            defaults=not stored,
            published=name == Event.TEST or allowed is None or name in allowed,
            routes=[
                RouteVerdict(
                    route=v.route,
                    matched=v.matched,
                    reasons=list(v.reasons),
                    stopped_here=v.stopped_here,
                    skipped=v.skipped,
                )
                for v in verdicts
            ],
            deliveries=[
                DeliveryView(
                    id=d.destination_id, type=d.destination.type, routes=d.routes, mentions=d.mentions
                )
                for d in deliveries
            ],
        )
