"""Validation of job and watch registrations: one code path for the HTTP API and the CLI.

Why it matters: a registration names a URL that the poller will later call, with an API key, from
inside AWS. This is the one place where user input becomes an outbound request target, so the rules
that keep the poller away from internal addresses (SSRF) are applied here, before anything is written:
- https only; plain http only for loopback hosts, and only with JOBWATCH_ALLOW_HTTP_LOOPBACK=true;
- the host is resolved and refused if ANY address is link-local (169.254.0.0/16 with the instance
  metadata address, fe80::/10), loopback (unless the http flag is on and the host is loopback by
  name: `localhost` or a loopback literal, never a public-looking name), private (10/8, 172.16/12,
  192.168/16, fc00::/7), shared CGNAT (100.64/10), multicast, unspecified, reserved or otherwise not
  public, also when wrapped in IPv6 (IPv4-mapped, NAT64, 6to4); JOBWATCH_ENDPOINT_ALLOWLIST may
  exempt CIDRs or hostnames;
- numeric hosts in non-canonical forms (`2130706433`, `0x7f.1`, `0177.0.0.1`) are refused outright:
  resolvers read them as addresses while humans and allow-lists do not.
The poller's HTTP client never follows redirects, so a vetted endpoint cannot bounce it elsewhere.
A refused registration raises `RegistrationRefused` naming the field; nothing is written.
"""

from __future__ import annotations

import hashlib
import re
import socket
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar, get_args
from urllib.parse import SplitResult, urlsplit, urlunsplit

from pydantic import BaseModel, ValidationError

from jobwatch.app.models import FieldProblem, JobRegistration, WatchRegistration, check_source
from jobwatch.domain.endpoints import EndpointPolicy, IPAddress, Resolver, is_loopback_name, parse_ip
from jobwatch.domain.errors import RegistrationError
from jobwatch.domain.identifiers import path_segment_problem, wire_field
from jobwatch.domain.model import JOB_ID_MAX, JobSpec, Watch
from jobwatch.domain.routing import (
    Destination,
    EmailDestination,
    EventBridgeDestination,
    Route,
    WebhookDestination,
)
from jobwatch.sources import get_source, source_names

_HOST_NAME = re.compile(
    r"^(?=.{1,253}\.?$)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*\.?$"
)


_NUMERIC_HOST = re.compile(r"^(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+))*\.?$")


ModelT = TypeVar("ModelT", bound=BaseModel)


def system_resolver(host: str) -> list[str]:
    """Every address the system resolver returns for `host` (A and AAAA)."""
    infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    return sorted({str(info[4][0]) for info in infos})


RESOLVER: Resolver = system_resolver
"""The resolver used when none is passed (tests replace it so that no DNS query ever leaves the box)."""


def resolve_host(policy: EndpointPolicy, host: str) -> list[IPAddress]:
    """The host's addresses, normalised through `ipaddress` (so numeric tricks show their real value)."""
    literal = parse_ip(host)
    if literal is not None:
        return [literal]
    texts = (policy.resolver or RESOLVER)(host)
    addresses = [ip for ip in (parse_ip(text) for text in texts) if ip is not None]
    if len(addresses) != len(texts):
        raise OSError(f"unparsable address among {list(texts)!r}")
    return addresses


class RegistrationRefused(RegistrationError):
    """A refused registration; `field` is the offending field's wire name (None: the whole request)."""

    def __init__(self, message: str, *, field: str | None = None, detail: str | None = None) -> None:
        super().__init__(message)
        self.field = field
        self.detail = detail or message

    def problems(self) -> list[FieldProblem]:
        return [FieldProblem(field=self.field or "body", message=self.detail)]


def _refuse(message: str) -> RegistrationRefused:
    return RegistrationRefused(message, field="endpoint")


def check_endpoint(url: str, policy: EndpointPolicy) -> str:
    """The normalised endpoint if the poller may call it, else RegistrationRefused (field `endpoint`).

    The checks run in this order, so each refusal names the first problem a reader would see.
    """
    parts, hostname = _url_shape(url)
    _check_no_credentials_or_query(parts)
    _check_port(url, parts)
    host = hostname.lower()
    _check_host_syntax(host)
    _check_numeric_host(url, host)
    if parts.scheme == "http":
        _check_http_is_for_loopback(url, host, policy)
    for ip in _resolved_addresses(policy, host):
        _check_address(url, parts.scheme, host, ip, policy)
    return urlunsplit((parts.scheme, parts.netloc.lower(), parts.path.rstrip("/"), "", ""))


def _url_shape(url: str) -> tuple[SplitResult, str]:
    """The URL's parts and host name: it must parse, be http(s) and name a host."""
    try:
        parts = urlsplit(url.strip())
        hostname = parts.hostname
    except ValueError:  # e.g. an unbalanced IPv6 bracket
        raise _refuse(f"endpoint {url!r} is not a valid URL") from None
    if parts.scheme not in ("https", "http") or not hostname:
        raise _refuse(f"endpoint {url!r} must be an absolute https:// URL")
    return parts, hostname


def _check_no_credentials_or_query(parts: SplitResult) -> None:
    """A key in the URL would be stored and logged in clear; a query or fragment is not an endpoint."""
    if parts.username or parts.password:
        raise _refuse("endpoint must not embed credentials; store the API key in Secrets Manager")
    if parts.query or parts.fragment:
        raise _refuse("endpoint must not carry a query string or fragment")


def _check_port(url: str, parts: SplitResult) -> None:
    """The port, when given, is a number in 0..65535."""
    try:
        parts.port  # noqa: B018 - raises ValueError for a port outside 0..65535 or not a number
    except ValueError:
        raise _refuse(f"endpoint {url!r} has an invalid port") from None


def _check_host_syntax(host: str) -> None:
    """An IP literal or a plain ASCII host name (IDNs in punycode, so allow-lists compare like with like)."""
    if any(ord(char) > 127 for char in host):
        raise _refuse(f"endpoint host {host!r} must be ASCII (use the punycode form of the name)")
    if parse_ip(host) is None and not _HOST_NAME.match(host):
        raise _refuse(f"endpoint host {host!r} is not a valid host name")


def _check_numeric_host(url: str, host: str) -> None:
    """Numeric hosts other than canonical literals (`2130706433`, `0x7f.1`): resolvers read them as
    addresses while humans and allow-lists do not."""
    if _NUMERIC_HOST.match(host) and parse_ip(host) is None:
        raise _refuse(
            f"endpoint {url!r} refused: numeric host {host!r} is not a canonical dotted-quad address"
        )


def _check_http_is_for_loopback(url: str, host: str, policy: EndpointPolicy) -> None:
    """Plain http carries the API key in clear: only to a loopback name, and only behind the flag."""
    if not is_loopback_name(host):
        raise _refuse(f"endpoint {url!r} refused: plain http is only allowed for loopback addresses")
    if not policy.allow_http_loopback:
        raise _refuse(f"endpoint {url!r} refused: plain http needs JOBWATCH_ALLOW_HTTP_LOOPBACK=true")


def _resolved_addresses(policy: EndpointPolicy, host: str) -> list[IPAddress]:
    """Every address the host stands for; a host that does not resolve cannot be checked, so it is refused."""
    try:
        addresses = resolve_host(policy, host)
    except (OSError, UnicodeError, ValueError) as exc:
        raise _refuse(f"endpoint host {host!r} does not resolve ({type(exc).__name__})") from None
    if not addresses:
        raise _refuse(f"endpoint host {host!r} does not resolve to any address")
    return addresses


def _check_address(url: str, scheme: str, host: str, ip: IPAddress, policy: EndpointPolicy) -> None:
    """One resolved address: loopback for plain http, and never internal unless allow-listed (SSRF)."""
    if scheme == "http" and not ip.is_loopback:
        raise _refuse(f"endpoint {url!r} refused: plain http host {host!r} resolves to non-loopback {ip}")
    kind = policy.refusal(host, ip)
    if kind is not None:
        where = f"{ip} is" if parse_ip(host) is not None else f"{host} resolves to {ip},"
        raise _refuse(
            f"endpoint {url!r} refused: {where} a {kind} address; internal addresses are only "
            "allowed through JOBWATCH_ENDPOINT_ALLOWLIST"
        )


def endpoint_refusal(url: str, policy: EndpointPolicy) -> str | None:
    """Why the poller must not call `url` now (None: it may); for re-checks at poll time (DNS rebinding)."""
    try:
        check_endpoint(url, policy)
    except RegistrationRefused as exc:
        return str(exc)
    return None


def normalize_endpoint(url: str, *, allow_http_loopback: bool, resolver: Resolver | None = None) -> str:
    """`check_endpoint` without an allow-list (kept for callers that only know the http flag)."""
    return check_endpoint(url, EndpointPolicy(allow_http_loopback, (), resolver))


def _wire_name(model: type[BaseModel], loc: Iterable[Any]) -> str:
    """Dotted wire (camelCase) path of a validation error location."""
    names: list[str] = []
    current: type[BaseModel] | None = model
    for part in loc:
        if isinstance(part, str) and current is not None and part in current.model_fields:
            info = current.model_fields[part]
            names.append(info.alias or part)
            annotation = info.annotation
            current = None
            for candidate in getattr(annotation, "__args__", (annotation,)):
                if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                    current = candidate
        else:
            names.append(str(part))
            current = None
    return ".".join(names) or "body"


def validation_problems(model: type[BaseModel], errors: Iterable[Mapping[str, Any]]) -> list[FieldProblem]:
    """One problem per pydantic error, named by wire field, without pydantic's "Value error, " prefix."""
    problems = []
    for error in errors:
        message = str(error.get("msg", "invalid"))
        message = message.removeprefix("Value error, ").removeprefix("Assertion failed, ")
        problems.append(FieldProblem(field=_wire_name(model, error.get("loc", ())), message=message))
    return problems


def parse_model(model: type[ModelT], fields: Mapping[str, Any] | ModelT) -> ModelT:
    """Validate raw fields (CLI) into a request model; errors become one RegistrationRefused."""
    if isinstance(fields, model):
        return fields
    try:
        return model.model_validate(dict(fields))
    except ValidationError as exc:
        problems = validation_problems(model, exc.errors())
        text = "; ".join(f"{problem.field}: {problem.message}" for problem in problems)
        refusal = RegistrationRefused(f"invalid registration: {text}", field=problems[0].field)
        refusal.detail = problems[0].message
        raise refusal from None


def parse_job_registration(fields: Mapping[str, Any] | JobRegistration) -> JobRegistration:
    """The CLI's entry: the source is checked first, so a typo names the valid sources and nothing else."""
    if isinstance(fields, JobRegistration):
        return fields
    name = fields.get("source")
    if not name:
        raise RegistrationRefused(
            f"missing field 'source' (one of: {', '.join(source_names())})", field="source"
        )
    try:
        check_source(str(name))
    except ValueError as exc:
        raise RegistrationRefused(str(exc), field="source") from None
    return parse_model(JobRegistration, fields)


def _require(value: str | None, wire: str, flag: str, python: str, owner: str) -> None:
    if not value or not value.strip():
        raise RegistrationRefused(
            f"{owner} needs --{flag} ({python})", field=wire, detail=f"{wire} is required for {owner}"
        )


def check_path_segment(name: str, value: str | None) -> None:
    """A value the poller will put into a URL path must be exactly one segment (`domain.identifiers`):
    `..`, `.`, empty, or containing `/`, `\\` or a control character is refused, naming the wire field."""
    if value is None:
        return  # absent: the required-field check owns that message
    problem = path_segment_problem(value)
    if problem is not None:
        wire = wire_field(name)
        raise RegistrationRefused(
            f"{wire} {value!r} cannot be one URL path segment: it {problem}",
            field=wire,
            detail=f"{value!r} cannot be one URL path segment: it {problem}",
        )


def build_spec(
    fields: Mapping[str, Any] | JobRegistration,
    policy: EndpointPolicy | None = None,
    *,
    allow_http_loopback: bool | None = None,
) -> JobSpec:
    """A validated JobSpec from a registration (API model or CLI fields), or RegistrationRefused."""
    if policy is None:
        policy = EndpointPolicy(bool(allow_http_loopback))
    registration = parse_job_registration(fields)
    job_id = registration.job_id.strip()
    if not job_id or len(registration.job_id) > JOB_ID_MAX:
        raise RegistrationRefused(
            f"missing or oversized field 'jobId' (1..{JOB_ID_MAX} characters)",
            field="jobId",
            detail=f"must be 1..{JOB_ID_MAX} characters, not blank",
        )
    source = get_source(registration.source)
    for name in source.required_fields:
        wire = "clusterId" if name == "cluster_id" else name
        _require(getattr(registration, name), wire, name.replace("_", "-"), name, f"source {source.name!r}")
    for name in source.path_fields:
        check_path_segment(name, job_id if name == "job_id" else getattr(registration, name))
    endpoint = check_endpoint(registration.endpoint, policy)
    return JobSpec(
        source=registration.source,
        endpoint=endpoint,
        job_id=job_id,
        backend=registration.backend,
        cluster_id=registration.cluster_id,
        options=registration.options,
        secret_name=registration.secret_name,
        labels=registration.labels,
        notify=registration.notify.settings() if registration.notify else None,
    )


WATCH_SCOPE: dict[str, tuple[str, str]] = {
    "zilliz-cloud-v1": ("cluster_id", "clusterId"),
    "zilliz-cloud-v2": ("cluster_id", "clusterId"),
    "weaviate-backups": ("backend", "backend"),
}
"""The scope field each watch kind needs (a Milvus instance lists all its databases' jobs)."""

WATCH_PATH_FIELDS: dict[str, tuple[str, ...]] = {"weaviate-backups": ("backend",)}
"""Watch fields that go into the listing's URL path (`GET /v1/backups/{backend}`)."""


def watch_id(kind: str, endpoint: str, scope: str) -> str:
    """Stable id: the same watch registered twice is the same watch."""
    raw = "\n".join([kind, endpoint.rstrip("/").lower(), scope])
    return f"{kind}.{hashlib.sha256(raw.encode('utf-8', 'surrogatepass')).hexdigest()[:16]}"


def build_watch(fields: Mapping[str, Any] | WatchRegistration, policy: EndpointPolicy, now_iso: str) -> Watch:
    """A validated watch from a registration, or RegistrationRefused."""
    registration = parse_model(WatchRegistration, fields)
    required = WATCH_SCOPE.get(registration.kind)
    if required is not None:
        python, wire = required
        _require(
            getattr(registration, python),
            wire,
            python.replace("_", "-"),
            python,
            f"watch {registration.kind!r}",
        )
    for name in WATCH_PATH_FIELDS.get(registration.kind, ()):
        check_path_segment(name, getattr(registration, name))
    endpoint = check_endpoint(registration.endpoint, policy)
    cluster_id, backend, db_name = _scope_fields(registration)
    scope = "/".join([cluster_id or "", backend or "", db_name or ""])
    return Watch(
        id=watch_id(registration.kind, endpoint, scope),
        kind=registration.kind,
        endpoint=endpoint,
        cluster_id=cluster_id,
        backend=backend,
        db_name=db_name,
        secret_name=registration.secret_name,
        labels=registration.labels,
        notify=registration.notify.settings() if registration.notify else None,
        created_at=now_iso,
    )


def _scope_fields(registration: WatchRegistration) -> tuple[str | None, str | None, str | None]:
    """Cluster id, backend and database name, each kept only for the kinds that use it (they make the id)."""
    kind = registration.kind
    cluster_id = registration.cluster_id if kind.startswith("zilliz") else None
    backend = registration.backend if kind == "weaviate-backups" else None
    db_name = (registration.db_name or "").strip() or None if kind == "milvus" else None
    return cluster_id, backend, db_name


def parse_pairs(pairs: list[str] | None, what: str) -> dict[str, str]:
    """`k=v` command-line pairs into a dict; a pair without `=` is an error, not silently dropped."""
    result: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise RegistrationRefused(f"{what} {pair!r} must look like key=value", field=f"{what}s")
        result[key.strip()] = value.strip()
    return result


# -- routes ----------------------------------------------------------------------------------------------

DESTINATION_TYPES: frozenset[str] = frozenset(
    str(kind.model_fields["type"].default) for kind in get_args(get_args(Destination)[0])
)
"""The destinations' `type` tags: pydantic puts the tag into an error's location, the wire name does not."""


class Refusals(RegistrationRefused):
    """A refusal with one problem per offending field (a route document can have several at once)."""

    def __init__(self, what: str, problems: Sequence[FieldProblem]) -> None:
        text = "; ".join(f"{problem.field}: {problem.message}" for problem in problems)
        super().__init__(f"{what}: {text}", field=problems[0].field, detail=problems[0].message)
        self.all = list(problems)

    def problems(self) -> list[FieldProblem]:
        return list(self.all)


def wire_path(loc: Iterable[Any]) -> str:
    """Dotted wire path of a validation error's location, without the destination type tag pydantic
    adds after a list index (`destinations.0.slack-app.channel` -> `destinations.0.channel`)."""
    parts: list[str] = []
    previous: Any = None
    for part in loc:
        if not (isinstance(previous, int) and isinstance(part, str) and part in DESTINATION_TYPES):
            parts.append(str(part))
        previous = part
    return ".".join(parts) or "body"


def parse_all(model: type[ModelT], fields: Any, what: str) -> ModelT:
    """Validate a whole document (a route, a routes file); every problem is reported, each by wire path."""
    try:
        return model.model_validate(fields)
    except ValidationError as exc:
        problems = [
            FieldProblem(
                field=wire_path(error.get("loc", ())),
                message=str(error.get("msg", "invalid")).removeprefix("Value error, "),
            )
            for error in exc.errors()
        ]
        raise Refusals(what, problems) from None


MissingSecret = Callable[[str], str | None]
"""Why a secret name cannot be used (it does not exist), or None when it may."""


def _secret_fields(destination: BaseModel, names: Sequence[str]) -> list[tuple[str, str]]:
    """(wire field, secret name) of each secret a destination names."""
    found = []
    for name, info in type(destination).model_fields.items():
        value = getattr(destination, name)
        if name.endswith("_secret") and isinstance(value, str) and value in names:
            found.append((info.alias or name, value))
    return found


def _webhook_problem(url: str, policy: EndpointPolicy) -> str | None:
    try:
        check_endpoint(url, policy)
    except RegistrationRefused as exc:
        return (
            exc.detail.replace("endpoint", "webhook URL", 1)
            if exc.detail.startswith("endpoint")
            else exc.detail
        )
    return None


def destination_problems(
    destination: Destination,
    where: str,
    policy: EndpointPolicy,
    missing: MissingSecret,
    email_topic: bool,
) -> list[FieldProblem]:
    """What the models cannot check alone: the endpoint rules for a webhook URL (the notifier will call
    it), that each named secret exists, and that addresses have a topic to be subscribed to."""
    problems = []
    if isinstance(destination, WebhookDestination):
        refused = _webhook_problem(destination.url, policy)
        if refused is not None:
            problems.append(FieldProblem(field=f"{where}.url", message=refused))
    if isinstance(destination, EmailDestination) and destination.addresses and not email_topic:
        problems.append(
            FieldProblem(
                field=f"{where}.addresses",
                message="e-mail addresses need the alert e-mail topic, and this API has none "
                "(JOBWATCH_EMAIL_TOPIC_ARN is not set): leave out `addresses` to reach the topic's "
                "subscribers, or set the variable",
            )
        )
    for wire, name in _secret_fields(destination, destination.secret_names):
        why = missing(name)
        if why is not None:
            problems.append(FieldProblem(field=f"{where}.{wire}", message=why))
    return problems


def bus_problem(bus: str, allowed: Sequence[str]) -> str | None:
    """A bus the notifier may not put events on (by name, or an ARN ending in that name)."""
    name = bus.rsplit("/", 1)[-1] if bus.startswith("arn:") else bus
    if not allowed or name in allowed:
        return None
    return (
        f"the notifier may put events only on {', '.join(allowed)}: grant its role events:PutEvents "
        f"on {bus!r} first (template.yaml, PutJobEvents), or name one of those"
    )


def route_problems(
    route: Route,
    where: str,
    policy: EndpointPolicy,
    missing: MissingSecret,
    email_topic: bool,
    buses: Sequence[str] = (),
) -> list[FieldProblem]:
    """Sources the match names that do not exist (a misspelt one would silently never match), then
    `destination_problems` of each destination (`where`: the route's wire path, or "")."""
    prefix = f"{where}." if where else ""
    problems: list[FieldProblem] = []
    known = source_names()
    for index, source in enumerate(route.match.sources or []):
        if source not in known:
            message = f"unknown source {source!r}; valid sources: {', '.join(known)}"
            problems.append(FieldProblem(field=f"{prefix}match.sources.{index}", message=message))
    for index, destination in enumerate(route.destinations):
        at = f"{prefix}destinations.{index}"
        problems += destination_problems(destination, at, policy, missing, email_topic)
        if isinstance(destination, EventBridgeDestination) and (why := bus_problem(destination.bus, buses)):
            problems.append(FieldProblem(field=f"{at}.bus", message=why))
    return problems


def duplicate_names(routes: Sequence[Route]) -> list[FieldProblem]:
    """A routes file names each route once (the stored set is keyed by name)."""
    first: dict[str, int] = {}
    problems = []
    for index, route in enumerate(routes):
        earlier = first.setdefault(route.name, index)
        if earlier != index:
            problems.append(
                FieldProblem(
                    field=f"routes.{index}.name",
                    message=f"route name {route.name!r} is already used by routes.{earlier}",
                )
            )
    return problems


def destination_conflicts(
    checked: Sequence[tuple[str, Route]], others: Sequence[Route] = ()
) -> list[FieldProblem]:
    """One destination id, one definition: two routes reaching `webhook.<hash of its URL>` with two
    signing secrets (or one Slack channel with two tokens) would make the delivery depend on which
    route matched first. `checked` pairs each route with its wire path ("" for a single route)."""
    seen: dict[str, tuple[str, Destination]] = {d.id: (r.name, d) for r in others for d in r.destinations}
    problems = []
    for where, route in checked:
        prefix = f"{where}." if where else ""
        for index, destination in enumerate(route.destinations):
            owner, first = seen.setdefault(destination.id, (route.name, destination))
            if first != destination:
                problems.append(
                    FieldProblem(
                        field=f"{prefix}destinations.{index}",
                        message=f"destination {destination.id} is already defined differently in route "
                        f"{owner!r}: give both routes the same definition",
                    )
                )
    return problems
