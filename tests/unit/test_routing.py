"""Route matching (`domain.routing.evaluate`): each condition, the order, `continue: false`, one delivery
per destination, and the default routes that reproduce jobwatch before routes. Then properties over
generated routes and transitions."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from jobwatch.domain.model import JobSpec
from jobwatch.domain.routing import (
    DEFAULT_EMAIL,
    DEFAULT_SLACK,
    EVENT_NAMES,
    Delivery,
    EmailDestination,
    EventBridgeDestination,
    LabelMatch,
    LabelOp,
    Route,
    RouteMatch,
    SlackAppDestination,
    SlackWebhookDestination,
    WebhookDestination,
    default_routes,
    evaluate,
)
from jobwatch.domain.severity import SEVERITIES, severity_for

BOT = "jobwatch/notify/slack-bot"
SEARCH = SlackAppDestination(channel="C0SEARCH1", token_secret=BOT)
ONCALL = SlackAppDestination(channel="C0ONCALL1", token_secret=BOT)
BUS = EventBridgeDestination(bus="jobs")
MAIL = EmailDestination(addresses=["search@example.com"])


def spec(source: str = "weaviate-export", **labels: str) -> JobSpec:
    return JobSpec(
        source=source, endpoint="https://w.example.com", job_id="exp-1", backend="s3", labels=labels
    )


def route(name: str, *destinations: Any, position: int = 0, stop: bool = False, **match: Any) -> Route:
    return Route(
        name=name,
        match=RouteMatch(**match),
        destinations=list(destinations or [BUS]),
        continue_=not stop,
        position=position,
    )


def ids(deliveries: list[Delivery]) -> list[str]:
    return [delivery.destination_id for delivery in deliveries]


def matched(routes: list[Route], job: JobSpec, event: str, severity: str | None = None) -> list[str]:
    _, verdicts = evaluate(routes, job, event, severity)
    return [verdict.route for verdict in verdicts if verdict.matched]


# -- each condition ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("matcher", "labels", "expected"),
    [
        (LabelMatch(key="team", value="search"), {"team": "search"}, True),
        (LabelMatch(key="team", value="search"), {"team": "ads"}, False),
        (LabelMatch(key="team", value="search"), {}, False),
        (LabelMatch(key="env", op=LabelOp.NOT_EQUALS, value="dev"), {"env": "prod"}, True),
        (LabelMatch(key="env", op=LabelOp.NOT_EQUALS, value="dev"), {"env": "dev"}, False),
        (LabelMatch(key="env", op=LabelOp.NOT_EQUALS, value="dev"), {}, True),  # absent differs
        (LabelMatch(key="oncall", op=LabelOp.EXISTS), {"oncall": ""}, True),
        (LabelMatch(key="oncall", op=LabelOp.EXISTS), {"team": "x"}, False),
        (LabelMatch(key="region", op=LabelOp.MATCHES, value="eu-.*"), {"region": "eu-west-1"}, True),
        (LabelMatch(key="region", op=LabelOp.MATCHES, value="eu-.*"), {"region": "us-eu-1"}, False),
        (
            LabelMatch(key="region", op=LabelOp.MATCHES, value="eu"),
            {"region": "eu-west-1"},
            False,
        ),  # whole value
        (LabelMatch(key="region", op=LabelOp.MATCHES, value="eu-.*"), {}, False),
    ],
)
def test_every_label_operator(matcher: LabelMatch, labels: dict[str, str], expected: bool) -> None:
    routes = [route("r", labels=[matcher])]
    assert matched(routes, spec(**labels), "FAILED") == (["r"] if expected else [])


def test_all_label_matchers_of_a_route_must_hold() -> None:
    both = route("r", labels=[LabelMatch(key="team", value="search"), LabelMatch(key="env", value="prod")])
    assert matched([both], spec(team="search", env="prod"), "FAILED") == ["r"]
    _, (verdict,) = evaluate([both], spec(team="search", env="dev"), "FAILED")
    assert (verdict.matched, verdict.reasons) == (False, ("not: label env=prod",))


def test_events_sources_and_severities() -> None:
    routes = [
        route("failures", events=["FAILED", "CANCELED"]),
        route("zilliz", sources=["zilliz-import-v1"]),
        route("loud", severities=["error", "warning"]),
    ]
    assert matched(routes, spec(), "FAILED") == ["failures", "loud"]
    assert matched(routes, spec(), "STALLED") == ["loud"]  # warning
    assert matched(routes, spec("zilliz-import-v1"), "STARTED") == ["zilliz"]
    assert matched(routes, spec(), "STARTED", severity="error") == ["loud"]  # a transition's own severity
    _, verdicts = evaluate(routes, spec(), "SUCCEEDED")
    assert [(v.route, v.reasons) for v in verdicts] == [  # same position: by name
        ("failures", ("event SUCCEEDED is not one of FAILED, CANCELED",)),
        ("loud", ("severity success is not one of error, warning",)),
        ("zilliz", ("source weaviate-export is not one of zilliz-import-v1",)),
    ]


def test_an_empty_match_matches_everything() -> None:
    for event in EVENT_NAMES:
        assert matched([route("all")], spec("milvus-import", any="label"), event) == ["all"]


def test_routes_are_tried_by_position_then_name() -> None:
    routes = [route("b", position=1), route("c", position=0), route("a", position=1)]
    _, verdicts = evaluate(routes, spec(), "FAILED")
    assert [v.route for v in verdicts] == ["c", "a", "b"]


def test_continue_false_stops_the_routes_after_it() -> None:
    routes = [
        route("search", SEARCH, position=0, stop=True, labels=[LabelMatch(key="team", value="search")]),
        route("everything", ONCALL, position=1),
    ]
    deliveries, verdicts = evaluate(routes, spec(team="search"), "FAILED")
    assert ids(deliveries) == ["slack-app.C0SEARCH1"]
    assert [(v.route, v.matched, v.stopped_here, v.skipped) for v in verdicts] == [
        ("search", True, True, False),
        ("everything", False, False, True),
    ]
    # A route with continue: false that does not match stops nothing.
    deliveries, _ = evaluate(routes, spec(team="ads"), "FAILED")
    assert ids(deliveries) == ["slack-app.C0ONCALL1"]


def test_one_delivery_per_destination_with_the_mentions_of_every_route() -> None:
    first = route("search", SEARCH, BUS, position=0, labels=[LabelMatch(key="team", value="search")])
    first = first.model_copy(update={"mentions": {"FAILED": ["<!subteam^S0SEARCH>", "<!here>"]}})
    second = route("failures", SEARCH, position=1, events=["FAILED"])
    second = second.model_copy(
        update={"mentions": {"FAILED": ["<@U0ONCALL>", "<!here>"], "LOST": ["<!channel>"]}}
    )
    deliveries, _ = evaluate([first, second], spec(team="search"), "FAILED")
    assert ids(deliveries) == ["slack-app.C0SEARCH1", BUS.id]
    slack = deliveries[0]
    assert slack.routes == ["search", "failures"]
    assert slack.mentions == ["<!subteam^S0SEARCH>", "<!here>", "<@U0ONCALL>"]
    assert deliveries[1].routes == ["search"]


def test_destination_ids_are_stable_and_address_order_does_not_matter() -> None:
    assert EmailDestination(addresses=["b@example.com", "a@example.com"]).id == (
        EmailDestination(addresses=["a@example.com", "b@example.com", "a@example.com"]).id
    )
    assert EmailDestination().id == DEFAULT_EMAIL
    assert SlackWebhookDestination(webhook_secret="(deployment default)").id == DEFAULT_SLACK
    hook = WebhookDestination(url="https://hooks.example.com/jobs", signing_secret="jobwatch/notify/hook")
    assert hook.id.startswith("webhook.") and hook.id == hook.model_copy().id


# -- the defaults: jobwatch before routes ----------------------------------------------------------------


@pytest.mark.parametrize("event", EVENT_NAMES)
def test_default_routes_reproduce_jobwatch_before_routes(event: str) -> None:
    deliveries, _ = evaluate(default_routes(["FAILED", "CANCELED"]), spec(), event)
    expected = [DEFAULT_SLACK] + ([DEFAULT_EMAIL] if event in ("FAILED", "CANCELED", "TEST") else [])
    assert ids(deliveries) == expected


def test_default_email_follows_the_deployments_alert_email_events() -> None:
    routes = default_routes(["LOST"])
    assert ids(evaluate(routes, spec(), "LOST")[0]) == [DEFAULT_SLACK, DEFAULT_EMAIL]
    assert ids(evaluate(routes, spec(), "FAILED")[0]) == [DEFAULT_SLACK]
    assert ids(evaluate(routes, spec(), "TEST")[0]) == [DEFAULT_SLACK, DEFAULT_EMAIL]


# -- what the models refuse ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "doc",
    [
        {"name": "r", "destinations": []},
        {"name": "Bad Name", "destinations": [{"type": "eventbridge"}]},
        {"name": "r", "destinations": [{"type": "sms"}]},
        {"name": "r", "destinations": [{"type": "eventbridge"}], "surprise": 1},
        {
            "name": "r",
            "match": {"labels": [{"key": "a", "op": "matches", "value": "("}]},
            "destinations": [{}],
        },
        {"name": "r", "match": {"labels": [{"key": "a", "op": "exists", "value": "x"}]}},
        {"name": "r", "match": {"events": ["FAILD"]}, "destinations": [{"type": "eventbridge"}]},
        {"name": "r", "destinations": [{"type": "slack-app", "channel": "C0SEARCH1", "tokenSecret": "mine"}]},
        {"name": "r", "destinations": [{"type": "eventbridge"}, {"type": "eventbridge"}]},
        {"name": "r", "destinations": [{"type": "eventbridge"}], "mentions": {"FAILED": ["@bob"]}},
    ],
)
def test_invalid_route_documents_are_refused(doc: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        Route.model_validate(doc)


# -- properties ------------------------------------------------------------------------------------------

SOURCES = ["weaviate-export", "zilliz-import-v1", "milvus-import"]
KEYS = ["team", "env", "region"]
VALUES = ["search", "ads", "prod", "eu-west-1", ""]
POOL = [
    SEARCH,
    ONCALL,
    BUS,
    MAIL,
    EmailDestination(),
    SlackWebhookDestination(webhook_secret="(deployment default)"),
    WebhookDestination(url="https://hooks.example.com/jobs", signing_secret="jobwatch/notify/hook"),
]
MENTIONS = ["<!here>", "<!channel>", "<@U0ONCALL>", "<!subteam^S0SEARCH>"]

label_matchers = st.one_of(
    st.builds(
        LabelMatch,
        key=st.sampled_from(KEYS),
        op=st.sampled_from([LabelOp.EQUALS, LabelOp.NOT_EQUALS]),
        value=st.sampled_from(VALUES),
    ),
    st.builds(LabelMatch, key=st.sampled_from(KEYS), op=st.just(LabelOp.EXISTS)),
    st.builds(
        LabelMatch,
        key=st.sampled_from(KEYS),
        op=st.just(LabelOp.MATCHES),
        value=st.sampled_from(["eu-.*", "s.*", "prod|ads", ".*"]),
    ),
)
matches = st.builds(
    RouteMatch,
    sources=st.none() | st.lists(st.sampled_from(SOURCES), min_size=1, max_size=2, unique=True),
    labels=st.lists(label_matchers, max_size=2),
    events=st.none() | st.lists(st.sampled_from(EVENT_NAMES), min_size=1, max_size=4, unique=True),
    severities=st.none() | st.lists(st.sampled_from(SEVERITIES), min_size=1, max_size=2, unique=True),
)


@st.composite
def routes(draw: st.DrawFn, min_size: int = 0) -> list[Route]:
    count = draw(st.integers(min_value=min_size, max_value=5))
    found = []
    for index in range(count):
        destinations = draw(st.lists(st.sampled_from(POOL), min_size=1, max_size=3, unique_by=lambda d: d.id))
        mentions = draw(
            st.dictionaries(
                st.sampled_from(EVENT_NAMES), st.lists(st.sampled_from(MENTIONS), max_size=2), max_size=3
            )
        )
        found.append(
            Route(
                name=f"route-{index}",
                match=draw(matches),
                destinations=destinations,
                continue_=draw(st.booleans()),
                mentions=mentions,
                position=draw(st.integers(min_value=0, max_value=3)),
            )
        )
    return found


jobs = st.builds(
    lambda source, labels: spec(source, **labels),
    st.sampled_from(SOURCES),
    st.dictionaries(st.sampled_from(KEYS), st.sampled_from(VALUES), max_size=3),
)
events = st.sampled_from(EVENT_NAMES)
PROPERTIES = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def wire(deliveries: list[Delivery]) -> list[tuple[str, list[str], list[str]]]:
    return [(d.destination_id, d.routes, d.mentions) for d in deliveries]


@PROPERTIES
@given(jobs, events, st.lists(st.sampled_from(POOL), min_size=1, max_size=3, unique_by=lambda d: d.id))
def test_a_route_with_an_empty_match_matches_every_transition(
    job: JobSpec, event: str, destinations: list[Any]
) -> None:
    deliveries, (verdict,) = evaluate([Route(name="all", destinations=destinations)], job, event)
    assert verdict.matched
    assert ids(deliveries) == [d.id for d in destinations]


@PROPERTIES
@given(routes(), jobs, events, st.integers(min_value=0, max_value=4), st.sampled_from(POOL))
def test_adding_a_route_that_does_not_match_never_changes_the_deliveries(
    given_routes: list[Route], job: JobSpec, event: str, position: int, destination: Any
) -> None:
    other = next(e for e in EVENT_NAMES if e != event)
    stranger = Route(
        name="stranger",
        match=RouteMatch(events=[other]),
        destinations=[destination],
        continue_=False,
        position=position,
    )
    before, _ = evaluate(given_routes, job, event)
    after, verdicts = evaluate([*given_routes, stranger], job, event)
    assert wire(after) == wire(before)
    assert not next(v for v in verdicts if v.route == "stranger").matched


@PROPERTIES
@given(routes(min_size=1), jobs, events)
def test_after_a_matching_route_with_continue_false_no_later_route_contributes(
    given_routes: list[Route], job: JobSpec, event: str
) -> None:
    _, verdicts = evaluate(given_routes, job, event)
    first = next((v.route for v in verdicts if v.matched), None)
    if first is None:
        return
    stopped = [r.model_copy(update={"continue_": False}) if r.name == first else r for r in given_routes]
    deliveries, verdicts = evaluate(stopped, job, event)
    winner = next(r for r in stopped if r.name == first)
    assert ids(deliveries) == [d.id for d in winner.destinations]
    assert all(delivery.routes == [first] for delivery in deliveries)
    assert [v.route for v in verdicts if v.matched] == [first]
    later = [v for v in verdicts[[v.route for v in verdicts].index(first) + 1 :]]
    assert all(v.skipped for v in later)


@PROPERTIES
@given(routes(), jobs, events)
def test_deliveries_never_repeat_a_destination_and_each_comes_from_a_matching_route(
    given_routes: list[Route], job: JobSpec, event: str
) -> None:
    deliveries, verdicts = evaluate(given_routes, job, event)
    assert len(ids(deliveries)) == len(set(ids(deliveries)))
    matching = {v.route for v in verdicts if v.matched}
    by_name = {r.name: r for r in given_routes}
    for delivery in deliveries:
        assert delivery.routes and set(delivery.routes) <= matching
        for name in delivery.routes:
            assert delivery.destination_id in {d.id for d in by_name[name].destinations}
        wanted = [m for name in delivery.routes for m in by_name[name].mentions.get(event, [])]
        assert delivery.mentions == list(dict.fromkeys(wanted))


@PROPERTIES
@given(routes(), jobs, events)
def test_the_order_routes_are_given_in_does_not_matter(
    given_routes: list[Route], job: JobSpec, event: str
) -> None:
    forwards = evaluate(given_routes, job, event)
    backwards = evaluate(list(reversed(given_routes)), job, event)
    assert wire(forwards[0]) == wire(backwards[0]) and forwards[1] == backwards[1]


def test_severity_defaults_to_the_events() -> None:
    loud = [route("loud", severities=["error"])]
    for event in EVENT_NAMES:
        assert matched(loud, spec(), event) == (["loud"] if severity_for(event) == "error" else [])
