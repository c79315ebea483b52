"""The route store and the e-mail subscriptions, one contract each, run against the adapter (moto server)
and the in-memory fake, as tests/integration/test_port_contracts.py does for the other ports."""

from __future__ import annotations

import json

import pytest

from jobwatch.adapters import aws
from jobwatch.adapters.dynamodb.routes import ROUTES_PK, DynamoRouteStore
from jobwatch.adapters.sns_subscriptions import SnsEmailSubscriptions
from jobwatch.domain.model import JobSpec
from jobwatch.domain.routing import EmailDestination, EventBridgeDestination, Route, RouteMatch
from jobwatch.entrypoints.wiring import job_store
from jobwatch.ports import EmailSubscriptions, RouteStore
from jobwatch_devkit.fakes import InMemoryEmailSubscriptions, InMemoryRouteStore
from jobwatch_devkit.harness import LocalDeployment

pytestmark = pytest.mark.integration

STANDING = "standing@example.com"


@pytest.fixture(params=["dynamodb", "in-memory"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def routes(kind: str, request: pytest.FixtureRequest) -> RouteStore:
    if kind == "in-memory":
        return InMemoryRouteStore()
    deployment: LocalDeployment = request.getfixturevalue("deployment")
    return DynamoRouteStore(aws.dynamodb(), deployment.settings.table)


@pytest.fixture
def subscriptions(kind: str, request: pytest.FixtureRequest) -> EmailSubscriptions:
    """Each with one standing subscriber outside routes (the stack's AlertEmail, say)."""
    if kind == "in-memory":
        return InMemoryEmailSubscriptions(standing=[STANDING])
    deployment: LocalDeployment = request.getfixturevalue("deployment")
    topic = deployment.settings.email_topic_arn
    aws.sns().subscribe(TopicArn=topic, Protocol="email", Endpoint=STANDING)
    return SnsEmailSubscriptions(aws.sns(), topic)


def _route(name: str, position: int = 0, **match: list[str]) -> Route:
    return Route(
        name=name,
        match=RouteMatch(**match),
        destinations=[EventBridgeDestination(bus="jobs"), EmailDestination(addresses=["a@example.com"])],
        mentions={"FAILED": ["<!here>"]},
        continue_=False,
        position=position,
    )


# -- RouteStore -----------------------------------------------------------------------------------------


def test_put_creates_then_replaces_and_get_returns_what_was_put(routes: RouteStore) -> None:
    first = _route("search", events=["FAILED"])
    assert routes.put(first) is True
    assert routes.get("search") == first
    replaced = _route("search", events=["FAILED", "LOST"])
    assert routes.put(replaced) is False
    assert routes.get("search") == replaced
    assert routes.get("nope") is None


def test_list_is_in_evaluation_order(routes: RouteStore) -> None:
    for route in (_route("c", 1), _route("b", 0), _route("a", 1)):
        routes.put(route)
    assert [route.name for route in routes.list()] == ["b", "a", "c"]


def test_delete_says_whether_there_was_a_route(routes: RouteStore) -> None:
    routes.put(_route("search"))
    assert routes.delete("search") is True
    assert routes.delete("search") is False
    assert routes.list() == []


def test_route_items_stay_out_of_job_listings_and_the_pollers_indexes(deployment: LocalDeployment) -> None:
    store = DynamoRouteStore(aws.dynamodb(), deployment.settings.table)
    store.put(_route("search"))
    jobs = job_store(deployment.settings)
    jobs.add_job(JobSpec(source="milvus-import", endpoint="https://m.example.com", job_id="1"), "2026-01-01")
    assert [job.spec.job_id for job in jobs.all_jobs()] == ["1"]
    assert [job.spec.job_id for page in jobs.pollable_pages() for job in page] == ["1"]
    item = aws.dynamodb().get_item(
        TableName=deployment.settings.table, Key={"pk": {"S": ROUTES_PK}, "sk": {"S": "search"}}
    )["Item"]
    assert set(item) == {"pk", "sk", "doc"}
    assert json.loads(item["doc"]["S"])["continue"] is False


# -- EmailSubscriptions --------------------------------------------------------------------------------


def test_subscriptions_are_listed_re_pointed_and_removed(subscriptions: EmailSubscriptions) -> None:
    assert subscriptions.subscribed() == {}  # the standing subscriber is not a route's
    subscriptions.subscribe("a@example.com", ["email.222222222222", "email.111111111111"])
    subscriptions.subscribe("b@example.com", ["email.111111111111"])
    assert subscriptions.subscribed() == {
        "a@example.com": ("email.111111111111", "email.222222222222"),
        "b@example.com": ("email.111111111111",),
    }
    subscriptions.subscribe("a@example.com", ["email.333333333333"])
    assert subscriptions.subscribed()["a@example.com"] == ("email.333333333333",)
    subscriptions.unsubscribe("a@example.com")
    subscriptions.unsubscribe("nobody@example.com")
    assert subscriptions.subscribed() == {"b@example.com": ("email.111111111111",)}


def test_a_standing_subscriber_is_never_changed_or_removed(subscriptions: EmailSubscriptions) -> None:
    subscriptions.subscribe(STANDING, ["email.111111111111"])
    subscriptions.unsubscribe(STANDING)
    assert subscriptions.subscribed() == {}


def test_the_sns_filter_policy_names_the_destinations_on_message_attributes(
    deployment: LocalDeployment,
) -> None:
    topic = deployment.settings.email_topic_arn
    SnsEmailSubscriptions(aws.sns(), topic).subscribe("a@example.com", ["email.111111111111"])
    (subscription,) = [
        s
        for s in aws.sns().list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
        if s["Endpoint"] == "a@example.com"
    ]
    attributes = aws.sns().get_subscription_attributes(SubscriptionArn=subscription["SubscriptionArn"])
    assert subscription["Protocol"] == "email"
    assert json.loads(attributes["Attributes"]["FilterPolicy"]) == {"destination": ["email.111111111111"]}
    assert attributes["Attributes"]["FilterPolicyScope"] == "MessageAttributes"
