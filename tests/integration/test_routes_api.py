"""Routes through the API handler and the CLI, against moto: add/list/show/remove, apply (idempotent, with
its diff and a dry run), explain, every class of invalid route (422 / exit 2, one message per field,
nothing written), and the alert e-mail topic's subscriptions (created once, with the right filter)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from jobwatch_tools.api_server import build_event
from jobwatch_tools.cli import main
from jobwatch_tools.local import api_handler

from jobwatch.adapters import aws
from jobwatch.api.routes import ROUTES
from jobwatch.app.operations import Operations
from jobwatch.app.registration import Refusals
from jobwatch.domain.endpoints import EndpointPolicy
from jobwatch.domain.routing import Route
from jobwatch.settings import ApiSettings
from jobwatch_devkit.fakes import (
    FakeClock,
    FakeSecrets,
    InMemoryEmailSubscriptions,
    InMemoryJobStore,
    InMemoryRouteStore,
    InMemoryWatchStore,
    RecordingPublisher,
)
from jobwatch_devkit.harness import LocalDeployment

pytestmark = pytest.mark.integration

EVENTS = Path(__file__).resolve().parents[2] / "events"
BOT = "jobwatch/notify/slack-bot"
HOOK = "jobwatch/notify/hook-key"
CHANNEL = "C0SEARCH01"
Capture = pytest.CaptureFixture[str]


def call(method: str, path: str, body: Any = None) -> tuple[int, Any]:
    payload = b"" if body is None else json.dumps(body).encode()
    event = build_event(method, path, [("Content-Type", "application/json")], payload, ROUTES)
    result = api_handler(event, None)
    return result["statusCode"], json.loads(result["body"])


def run(capsys: Capture, *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def secrets(deployment: LocalDeployment) -> LocalDeployment:
    for name in (BOT, HOOK):
        aws.secretsmanager().create_secret(Name=name, SecretString="not-a-real-value")
    return deployment


def search_route(**extra: Any) -> dict[str, Any]:
    return {
        "name": "search-failures",
        "match": {"labels": [{"key": "team", "value": "search"}], "events": ["FAILED", "CANCELED"]},
        "destinations": [{"type": "slack-app", "channel": CHANNEL, "tokenSecret": BOT}],
        "mentions": {"FAILED": ["<!subteam^S0SEARCH>"]},
        "continue": False,
        **extra,
    }


EVERYTHING = {"name": "everything", "destinations": [{"type": "eventbridge", "bus": "jobwatch-jobs"}]}


def track(labels: dict[str, str] | None = None, **extra: Any) -> str:
    body = {
        "source": "milvus-import",
        "endpoint": "https://milvus.example.com",
        "jobId": "42",
        "labels": labels or {},
        **extra,
    }
    status, job = call("POST", "/jobs", body)
    assert status == 201, job
    return str(job["key"])


def stored_routes() -> list[str]:
    status, body = call("GET", "/routes")
    assert status == 200
    return [route["name"] for route in body["routes"]]


def email_subscriptions(deployment: LocalDeployment) -> dict[str, dict[str, Any]]:
    """Address -> filter policy of every e-mail subscription of the alert e-mail topic, as SNS holds them."""
    sns = aws.sns()
    found = {}
    topic = deployment.settings.email_topic_arn
    for subscription in sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]:
        if subscription["Protocol"] == "email":
            attributes = sns.get_subscription_attributes(SubscriptionArn=subscription["SubscriptionArn"])
            found[subscription["Endpoint"]] = attributes["Attributes"]
    return found


# -- the API ---------------------------------------------------------------------------------------------


def test_without_routes_the_listing_shows_the_defaults(deployment: LocalDeployment) -> None:
    status, body = call("GET", "/routes")
    assert status == 200 and body["routes"] == []
    assert [route["name"] for route in body["defaults"]] == ["default-slack", "default-email"]
    assert body["defaults"][1]["match"]["events"] == ["FAILED", "CANCELED", "TEST"]


def test_add_show_replace_list_and_remove_a_route(secrets: LocalDeployment) -> None:
    status, created = call("POST", "/routes", search_route())
    assert status == 201, created
    assert created == Route.model_validate(search_route()).to_wire()
    assert call("GET", "/routes/search-failures") == (200, created)
    status, other = call("POST", "/routes", EVERYTHING)
    assert (status, other["position"]) == (201, 1)  # a new route without position goes last

    replaced = search_route(match={"events": ["FAILED"]})
    status, body = call("POST", "/routes", replaced)
    assert (status, body["match"]["events"], body["position"]) == (200, ["FAILED"], 0)  # keeps its place
    status, listing = call("GET", "/routes")
    assert (status, listing["defaults"]) == (200, None)
    assert [r["name"] for r in listing["routes"]] == ["search-failures", "everything"]

    assert call("DELETE", "/routes/search-failures") == (200, {"deleted": "search-failures"})
    for method in ("GET", "DELETE"):
        status, body = call(method, "/routes/search-failures")
        assert (status, body["message"]) == (404, "no route 'search-failures'")
    assert call("GET", "/routes/Not_A_Name")[0] == 404
    assert stored_routes() == ["everything"]


def test_apply_answers_the_diff_and_applying_again_changes_nothing(secrets: LocalDeployment) -> None:
    call("POST", "/routes", {"name": "old", "destinations": [{"type": "eventbridge"}]})
    status, diff = call("PUT", "/routes", {"routes": [search_route(), EVERYTHING]})
    assert status == 200, diff
    assert (diff["added"], diff["changed"], diff["removed"], diff["unchanged"]) == (
        ["search-failures", "everything"],
        [],
        ["old"],
        [],
    )
    assert stored_routes() == ["search-failures", "everything"]
    status, again = call("PUT", "/routes", {"routes": [search_route(), EVERYTHING]})
    assert (status, again["added"], again["changed"], again["removed"]) == (200, [], [], [])
    assert again["unchanged"] == ["search-failures", "everything"]

    status, reordered = call("PUT", "/routes", {"routes": [EVERYTHING, search_route(mentions={})]})
    assert status == 200
    assert reordered["changed"] == [
        {"name": "everything", "fields": ["position"]},
        {"name": "search-failures", "fields": ["mentions", "position"]},
    ]
    assert stored_routes() == ["everything", "search-failures"]


def test_a_dry_run_answers_the_same_diff_and_writes_nothing(secrets: LocalDeployment) -> None:
    body = {
        "routes": [
            search_route(),
            {**EVERYTHING, "destinations": [{"type": "email", "addresses": ["x@example.com"]}]},
        ]
    }
    status, diff = call("PUT", "/routes?dryRun=true", body)
    assert status == 200 and diff["dryRun"] is True
    assert diff["added"] == ["search-failures", "everything"]
    assert [s["address"] for s in diff["subscriptions"]["subscribed"]] == ["x@example.com"]
    assert stored_routes() == []
    assert email_subscriptions(secrets) == {}
    status, applied = call("PUT", "/routes?dryRun=false", body)
    assert {k: v for k, v in applied.items() if k != "dryRun"} == {
        k: v for k, v in diff.items() if k != "dryRun"
    }


def test_explain_shows_each_verdict_and_the_deliveries(secrets: LocalDeployment) -> None:
    key = track({"team": "search"})
    status, defaults = call("GET", f"/jobs/{key}/routes?event=STARTED")
    assert status == 200 and defaults["defaults"] is True
    assert [(v["route"], v["matched"]) for v in defaults["routes"]] == [
        ("default-slack", True),
        ("default-email", False),
    ]
    assert defaults["routes"][1]["reasons"] == ["event STARTED is not one of FAILED, CANCELED, TEST"]
    assert [d["id"] for d in defaults["deliveries"]] == ["slack"]

    call("PUT", "/routes", {"routes": [search_route(), EVERYTHING]})
    status, failed = call("GET", f"/jobs/{key}/routes?event=FAILED")
    assert status == 200
    assert (failed["event"], failed["severity"], failed["defaults"], failed["published"]) == (
        "FAILED",
        "error",
        False,
        True,
    )
    assert failed["routes"] == [
        {
            "route": "search-failures",
            "matched": True,
            "reasons": ["matches"],
            "stoppedHere": True,
            "skipped": False,
        },
        {
            "route": "everything",
            "matched": False,
            "reasons": ["an earlier route has continue: false"],
            "stoppedHere": False,
            "skipped": True,
        },
    ]
    assert failed["deliveries"] == [
        {
            "id": f"slack-app.{CHANNEL}",
            "type": "slack-app",
            "routes": ["search-failures"],
            "mentions": ["<!subteam^S0SEARCH>"],
        }
    ]
    status, body = call("GET", f"/jobs/{key}/routes")
    assert (status, body["errors"][0]["field"]) == (422, "query.event")
    assert call("GET", "/jobs/milvus-import.0123456789abcdef0123/routes?event=FAILED")[0] == 404


def test_explain_says_when_the_job_does_not_publish_the_event(secrets: LocalDeployment) -> None:
    key = track(notify={"events": ["FAILED"]})
    status, body = call("GET", f"/jobs/{key}/routes?event=SUCCEEDED")
    assert (status, body["published"]) == (200, False)


WEBHOOK = {"type": "webhook", "url": "https://hooks.example.com/jobs", "signingSecret": HOOK}
INVALID: dict[str, tuple[dict[str, Any], dict[str, str]]] = {
    "unknown field": ({**EVERYTHING, "matches": {}}, {"matches": "Extra inputs are not permitted"}),
    "unknown field in the match": (
        {**EVERYTHING, "match": {"event": ["FAILED"]}},
        {"match.event": "Extra inputs are not permitted"},
    ),
    "bad regular expression": (
        {**EVERYTHING, "match": {"labels": [{"key": "team", "op": "matches", "value": "(search"}]}},
        {
            "match.labels.0": "invalid regular expression '(search': missing ), unterminated subpattern at "
            "position 0"
        },
    ),
    "unknown destination type": (
        {**EVERYTHING, "destinations": [{"type": "sms", "number": "+15550100"}]},
        {
            "destinations.0": "Input tag 'sms' found using 'type' does not match any of the expected tags: "
            "'slack-app', 'slack-webhook', 'email', 'eventbridge', 'webhook'"
        },
    ),
    "bad channel": (
        {**EVERYTHING, "destinations": [{"type": "slack-app", "channel": "#search", "tokenSecret": BOT}]},
        {"destinations.0.channel": "String should match pattern '^[CGD][A-Z0-9]{6,20}$'"},
    ),
    "refused webhook URL": (
        {**EVERYTHING, "destinations": [{**WEBHOOK, "url": "https://169.254.169.254/latest"}]},
        {
            "destinations.0.url": "webhook URL 'https://169.254.169.254/latest' refused: 169.254.169.254 is "
            "a link-local address; internal addresses are only allowed through JOBWATCH_ENDPOINT_ALLOWLIST"
        },
    ),
    "plain http webhook": (
        {**EVERYTHING, "destinations": [{**WEBHOOK, "url": "http://hooks.example.com/jobs"}]},
        {
            "destinations.0.url": "webhook URL 'http://hooks.example.com/jobs' refused: plain http is only "
            "allowed for loopback addresses"
        },
    ),
    "missing secret": (
        {
            **EVERYTHING,
            "destinations": [{"type": "slack-app", "channel": CHANNEL, "tokenSecret": BOT + "-typo"}],
        },
        {
            "destinations.0.tokenSecret": f"secret '{BOT}-typo' does not exist in Secrets Manager: create "
            "it first, or register with allowMissingSecret (CLI: --allow-missing-secret) to accept it now "
            "and add it before the first delivery"
        },
    ),
    "secret outside the notifier's prefix": (
        {
            **EVERYTHING,
            "destinations": [{"type": "slack-app", "channel": CHANNEL, "tokenSecret": "jobwatch/zilliz"}],
        },
        {
            "destinations.0.tokenSecret": "destination secrets live under 'jobwatch/notify/' (only the "
            "notifier may read them)"
        },
    ),
    "a bus the notifier may not put events on": (
        {
            **EVERYTHING,
            "destinations": [{"type": "eventbridge", "bus": "arn:aws:events:us-east-1:1:event-bus/x"}],
        },
        {
            "destinations.0.bus": "the notifier may put events only on jobwatch-jobs, default: grant its "
            "role events:PutEvents on 'arn:aws:events:us-east-1:1:event-bus/x' first (template.yaml, "
            "PutJobEvents), or name one of those"
        },
    ),
    "misspelt source": (
        {**EVERYTHING, "match": {"sources": ["milvus-import", "zilliz-import"]}},
        {
            "match.sources.1": "unknown source 'zilliz-import'; valid sources: milvus-import, "
            "pinecone-import, weaviate-backup, weaviate-export, weaviate-restore, zilliz-import-v1, "
            "zilliz-import-v2"
        },
    ),
    "several problems at once": (
        {
            "name": "Bad Name",
            "match": {"events": ["FAILD"]},
            "destinations": [
                {**WEBHOOK, "url": "http://10.0.0.8/hook"},
                {"type": "eventbridge", "bus": "a b"},
            ],
        },
        {
            "name": "String should match pattern '^[a-z0-9][a-z0-9-]{0,62}$'",
            "match.events": "unknown event 'FAILD'; valid events: QUEUED, STARTED, SUCCEEDED, FAILED, "
            "CANCELED, LOST, STALLED, RESUMED, OVERDUE, UNREACHABLE, AUTH_FAILED, RECOVERED, TEST",
            "destinations.1.bus": "String should match pattern '^[A-Za-z0-9/:._-]{1,1600}$'",
        },
    ),
}


def _problems(body: dict[str, Any]) -> dict[str, str]:
    fields = [error["field"] for error in body["errors"]]
    assert len(fields) == len(set(fields)), body  # one message per field
    return {error["field"]: error["message"] for error in body["errors"]}


@pytest.mark.parametrize("case", list(INVALID.values()), ids=list(INVALID))
def test_every_invalid_route_is_422_with_one_message_per_field_and_writes_nothing(
    secrets: LocalDeployment, case: tuple[dict[str, Any], dict[str, str]]
) -> None:
    route, expected = case
    status, body = call("POST", "/routes", route)
    assert status == 422, body
    assert _problems(body) == expected
    status, body = call("PUT", "/routes", {"routes": [{**EVERYTHING, "name": "first"}, route]})
    assert status == 422, body
    assert _problems(body) == {f"routes.1.{field}": message for field, message in expected.items()}
    assert stored_routes() == []


def test_apply_refuses_two_routes_of_one_name_and_one_destination_defined_twice(
    secrets: LocalDeployment,
) -> None:
    first = {"name": "a", "destinations": [WEBHOOK]}
    second = {"name": "b", "destinations": [{**WEBHOOK, "signingSecret": BOT}]}
    status, body = call(
        "PUT", "/routes", {"routes": [first, second, {**first, "destinations": [{"type": "eventbridge"}]}]}
    )
    assert status == 422
    problems = _problems(body)
    assert problems["routes.2.name"] == "route name 'a' is already used by routes.0"
    assert problems["routes.1.destinations.0"].startswith("destination webhook.")
    assert "is already defined differently in route 'a'" in problems["routes.1.destinations.0"]
    assert stored_routes() == []


def test_a_missing_secret_is_accepted_when_the_caller_says_so(secrets: LocalDeployment) -> None:
    route = {
        **EVERYTHING,
        "destinations": [{"type": "slack-app", "channel": CHANNEL, "tokenSecret": BOT + "-new"}],
    }
    assert call("POST", "/routes", route)[0] == 422
    assert call("POST", "/routes?allowMissingSecret=true", route)[0] == 201
    assert call("PUT", "/routes?allowMissingSecret=true", {"routes": [route]})[1]["unchanged"] == [
        "everything"
    ]


def test_a_loopback_http_webhook_is_accepted_behind_the_deployments_flag(secrets: LocalDeployment) -> None:
    route = {**EVERYTHING, "destinations": [{**WEBHOOK, "url": "http://localhost:8080/hook"}]}
    assert call("POST", "/routes", route)[0] == 201  # the harness sets JOBWATCH_ALLOW_HTTP_LOOPBACK=true


def test_more_routes_than_allowed_are_refused(secrets: LocalDeployment) -> None:
    many = [{"name": f"r{i}", "destinations": [{"type": "eventbridge"}]} for i in range(101)]
    status, body = call("PUT", "/routes", {"routes": many})
    assert (status, [e["field"] for e in body["errors"]]) == (422, ["routes"])
    assert call("PUT", "/routes", {"routes": many[:100]})[0] == 200
    status, body = call("POST", "/routes", many[100])
    assert (status, body["errors"]) == (
        422,
        [{"field": "name", "message": "at most 100 routes: remove one first"}],
    )


# -- e-mail subscriptions --------------------------------------------------------------------------------


def test_email_addresses_are_subscribed_once_with_a_filter_on_their_destination(
    secrets: LocalDeployment,
) -> None:
    team = {"type": "email", "addresses": ["a@example.com", "b@example.com"]}
    routes = [
        search_route(destinations=[team]),
        {**EVERYTHING, "destinations": [{"type": "email", "addresses": ["b@example.com"]}]},
    ]
    status, diff = call("PUT", "/routes", {"routes": routes})
    assert status == 200, diff
    team_id = Route.model_validate(routes[0]).destinations[0].id
    b_id = Route.model_validate(routes[1]).destinations[0].id
    assert diff["subscriptions"]["subscribed"] == [
        {"address": "a@example.com", "destinations": [team_id]},
        {"address": "b@example.com", "destinations": sorted([team_id, b_id])},
    ]
    held = email_subscriptions(secrets)
    assert set(held) == {"a@example.com", "b@example.com"}
    assert json.loads(held["a@example.com"]["FilterPolicy"]) == {"destination": [team_id]}
    assert held["a@example.com"]["FilterPolicyScope"] == "MessageAttributes"
    assert json.loads(held["b@example.com"]["FilterPolicy"]) == {"destination": sorted([team_id, b_id])}
    arns = {address: attributes["SubscriptionArn"] for address, attributes in held.items()}

    status, again = call("PUT", "/routes", {"routes": routes})
    assert again["subscriptions"] == {"subscribed": [], "updated": [], "unsubscribed": [], "pending": []}
    assert {a: x["SubscriptionArn"] for a, x in email_subscriptions(secrets).items()} == arns

    status, fewer = call("PUT", "/routes", {"routes": routes[1:]})
    assert fewer["subscriptions"] == {
        "subscribed": [],
        "updated": [{"address": "b@example.com", "destinations": [b_id]}],
        "unsubscribed": ["a@example.com"],
        "pending": [],
    }
    held = email_subscriptions(secrets)
    assert (
        set(held) == {"b@example.com"} and held["b@example.com"]["SubscriptionArn"] == arns["b@example.com"]
    )
    assert call("DELETE", "/routes/everything")[0] == 200
    assert email_subscriptions(secrets) == {}


def test_addresses_are_refused_without_an_email_topic_and_pending_ones_are_left_alone() -> None:
    """On fakes: an API wired without JOBWATCH_EMAIL_TOPIC_ARN, and addresses that have not confirmed."""

    def operations(subscriptions: InMemoryEmailSubscriptions | None) -> Operations:
        return Operations(
            settings=ApiSettings(table="t", topic_arn="arn:aws:sns:us-east-1:1:t"),
            store=InMemoryJobStore(),
            watches=InMemoryWatchStore(),
            publisher=RecordingPublisher(),
            policy=EndpointPolicy(False),
            clock=FakeClock(),
            secret_names=FakeSecrets(),
            routes=InMemoryRouteStore(),
            email_subscriptions=subscriptions,
        )

    route = Route.model_validate(
        {"name": "team", "destinations": [{"type": "email", "addresses": ["a@example.com"]}]}
    )
    with pytest.raises(Refusals) as refused:
        operations(None).put_route(route)
    assert [p.field for p in refused.value.problems()] == ["destinations.0.addresses"]
    assert "JOBWATCH_EMAIL_TOPIC_ARN is not set" in refused.value.problems()[0].message

    mail = InMemoryEmailSubscriptions(confirm=False)
    ops = operations(mail)
    assert ops.put_route(route)[2].subscribed[0].address == "a@example.com"
    other = route.model_copy(
        update={
            "destinations": [
                Route.model_validate(
                    {
                        "name": "x",
                        "destinations": [{"type": "email", "addresses": ["a@example.com", "c@example.com"]}],
                    }
                ).destinations[0]
            ]
        }
    )
    diff = ops.apply_routes([other], dry_run=False)
    assert (diff.subscriptions.pending, [c.address for c in diff.subscriptions.subscribed]) == (
        ["a@example.com"],
        ["c@example.com"],
    )
    mail.confirm_all()
    diff = ops.apply_routes([other], dry_run=False)
    assert [(c.address, c.destinations) for c in diff.subscriptions.updated] == [
        ("a@example.com", [other.destinations[0].id])
    ]


# -- the committed sample events -------------------------------------------------------------------------


def test_route_sample_events_run_through_the_handler(secrets: LocalDeployment) -> None:
    def run_event(name: str) -> tuple[int, Any]:
        result = api_handler(json.loads((EVENTS / name).read_text(encoding="utf-8")), None)
        return result["statusCode"], json.loads(result["body"])

    aws.secretsmanager().create_secret(Name="jobwatch/zilliz", SecretString="sample-key")
    assert run_event("api-track-job.json")[0] == 201
    assert run_event("api-list-routes.json")[1]["routes"] == []
    status, route = run_event("api-add-route.json")
    assert (status, route["name"]) == (201, "search-failures")
    assert run_event("api-show-route.json") == (200, route)
    status, diff = run_event("api-apply-routes.json")
    assert (status, diff["dryRun"], diff["unchanged"], diff["added"]) == (
        200,
        True,
        ["search-failures"],
        ["everything"],
    )
    status, explanation = run_event("api-explain-job-routes.json")
    assert status == 200 and explanation["event"] == "FAILED"
    assert run_event("api-remove-route.json") == (200, {"deleted": "search-failures"})


# -- the CLI ---------------------------------------------------------------------------------------------


def test_cli_route_add_list_show_and_remove(
    secrets: LocalDeployment, capsys: Capture, tmp_path: Path
) -> None:
    code, out, err = run(
        capsys,
        "route", "add", "search-failures",
        "--label", "team=search", "--label", "env!=dev", "--label", "region=~eu-.*",
        "--label-exists", "oncall",
        "--event", "FAILED,CANCELED", "--event", "LOST", "--severity", "error",
        "--slack-app", CHANNEL, "--token-secret", BOT,
        "--mention", "FAILED=<!subteam^S0SEARCH>", "--mention", "LOST=<!here>",
        "--stop",
    )  # fmt: skip
    assert (code, err) == (0, "")
    assert out == "added route search-failures (position 0)\n"
    code, out, err = run(
        capsys, "route", "add", "everything", "--eventbridge", "jobwatch-jobs", "--default-slack"
    )
    assert (code, out) == (0, "added route everything (position 1)\n")

    code, out, err = run(capsys, "route", "list")
    assert (code, err) == (0, "")
    header, first, second = out.splitlines()
    assert header.split() == ["NAME", "POS", "MATCH", "DESTINATIONS", "THEN"]
    assert first.split() == [
        "search-failures",
        "0",
        "events=FAILED,CANCELED,LOST",
        "severities=error",
        "team=search",
        "env!=dev",
        "region=~eu-.*",
        "oncall",
        "exists",
        f"slack-app.{CHANNEL}",
        "stop",
    ]
    assert second.split()[:3] == ["everything", "1", "(everything)"] and second.endswith("continue")

    code, out, err = run(capsys, "route", "show", "search-failures")
    assert code == 0
    shown = yaml.safe_load(out)
    assert shown["match"]["labels"] == [
        {"key": "team", "op": "equals", "value": "search"},
        {"key": "env", "op": "not-equals", "value": "dev"},
        {"key": "region", "op": "matches", "value": "eu-.*"},
        {"key": "oncall", "op": "exists", "value": None},
    ]
    assert shown["mentions"] == {"FAILED": ["<!subteam^S0SEARCH>"], "LOST": ["<!here>"]}
    assert shown["continue"] is False

    # What `show` prints is a route file: --file replaces the route with it (here: with one more event).
    shown["match"]["events"].append("STALLED")
    path = tmp_path / "route.yaml"
    path.write_text(yaml.safe_dump(shown), encoding="utf-8")
    code, out, err = run(capsys, "route", "add", "--file", str(path))
    assert (code, out, err) == (0, "replaced route search-failures (position 0)\n", "")
    code, out, err = run(capsys, "route", "add", "search-failures", "--file", str(path), "--stop")
    assert (code, out, err) == (2, "", "jobwatch: --file describes the whole route: leave out --stop\n")

    assert run(capsys, "route", "remove", "search-failures")[:2] == (0, "removed route search-failures\n")
    assert run(capsys, "route", "remove", "search-failures")[::2] == (
        1,
        "jobwatch: no route 'search-failures'\n",
    )
    assert run(capsys, "route", "show", "search-failures")[0] == 1


def test_cli_route_list_without_routes_names_the_defaults(
    deployment: LocalDeployment, capsys: Capture
) -> None:
    code, out, _ = run(capsys, "route", "list")
    lines = out.splitlines()
    assert (code, lines[0]) == (0, "no routes stored: the deployment's default routes apply")
    assert [line.split()[0] for line in lines[2:]] == ["default-slack", "default-email"]


def test_cli_route_add_refusals_name_each_field(secrets: LocalDeployment, capsys: Capture) -> None:
    code, out, err = run(
        capsys, "route", "add", "bad", "--slack-app", "#search", "--token-secret", BOT + "-typo",
        "--webhook", "https://10.0.0.8/hook", "--signing-secret", HOOK, "--event", "FAILD",
    )  # fmt: skip
    assert (code, out) == (2, "")
    assert err.splitlines() == [
        "jobwatch: route 'bad' refused, nothing written: match.events: unknown event 'FAILD'; valid events: "
        "QUEUED, STARTED, SUCCEEDED, FAILED, CANCELED, LOST, STALLED, RESUMED, OVERDUE, UNREACHABLE, "
        "AUTH_FAILED, RECOVERED, TEST",
        "jobwatch: route 'bad' refused, nothing written: destinations.0.channel: String should match pattern "
        "'^[CGD][A-Z0-9]{6,20}$'",
    ]
    code, out, err = run(capsys, "route", "add", "bad", "--webhook", "https://10.0.0.8/hook")
    assert (code, err) == (
        2,
        "jobwatch: route 'bad' refused, nothing written: --webhook needs --signing-secret\n",
    )
    code, out, err = run(capsys, "route", "add", "bad", "--label", "team")
    assert code == 2 and "must be K=V, K!=V or K=~REGEX (presence: --label-exists K)" in err
    code, out, err = run(capsys, "route", "add", "--event", "FAILED")
    assert (code, err) == (2, "jobwatch: route add needs a NAME (or --file with a named route)\n")
    assert stored_routes() == []


ROUTES_FILE = f"""\
# Team search hears about its own failures first; everything goes to the bus.
- name: search-failures
  match:
    labels:
      - {{key: team, value: search}}
    events: [FAILED, CANCELED]
  destinations:
    - {{type: slack-app, channel: {CHANNEL}, tokenSecret: {BOT}}}
    - {{type: email, addresses: [search@example.com]}}
  mentions:
    FAILED: ["<!subteam^S0SEARCH>"]
  continue: false
- name: everything
  destinations:
    - {{type: eventbridge, bus: jobwatch-jobs}}
"""


def test_cli_routes_apply_prints_the_diff_and_applying_twice_changes_nothing(
    secrets: LocalDeployment, capsys: Capture, tmp_path: Path
) -> None:
    call("POST", "/routes", {"name": "old", "destinations": [{"type": "eventbridge"}]})
    path = tmp_path / "routes.yaml"
    path.write_text(ROUTES_FILE, encoding="utf-8")
    mail_id = Route.model_validate(yaml.safe_load(ROUTES_FILE)[0]).destinations[1].id

    code, out, err = run(capsys, "routes", "apply", str(path), "--dry-run")
    assert (code, err) == (0, "")
    assert out.splitlines()[-1] == "dry run, nothing written: 2 added, 0 changed, 1 removed, 0 unchanged"
    assert stored_routes() == ["old"] and email_subscriptions(secrets) == {}

    code, out, err = run(capsys, "routes", "apply", str(path))
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        "+ search-failures",
        "+ everything",
        "- old",
        "e-mail subscriptions:",
        f"  + search@example.com  {mail_id}  (subscribed: the address confirms once)",
        "applied: 2 added, 0 changed, 1 removed, 0 unchanged",
    ]
    code, out, err = run(capsys, "routes", "apply", str(path))
    assert (code, out) == (
        0,
        "= search-failures\n= everything\napplied: 0 added, 0 changed, 0 removed, 2 unchanged\n",
    )
    assert list(email_subscriptions(secrets)) == ["search@example.com"]

    path.write_text(
        ROUTES_FILE.replace("[FAILED, CANCELED]", "[FAILED]").replace("bus: jobwatch-jobs", "bus: default")
    )
    code, out, err = run(capsys, "routes", "apply", str(path))
    assert out.splitlines()[:2] == ["~ search-failures  (match)", "~ everything  (destinations)"]
    code, out, err = run(capsys, "routes", "apply", str(path), "--json")
    assert json.loads(out)["unchanged"] == ["search-failures", "everything"]


def test_cli_routes_apply_refuses_an_invalid_file_naming_each_route_and_field(
    secrets: LocalDeployment, capsys: Capture, tmp_path: Path
) -> None:
    path = tmp_path / "routes.yaml"
    path.write_text(
        ROUTES_FILE.replace("value: search}", "op: matches, value: '(search'}").replace(
            "bus: jobwatch-jobs", "bus: jobwatch-jobs, region: eu"
        )
        + "- name: everything\n"
        + "  destinations: [{type: webhook, url: 'https://169.254.169.254', signingSecret: x}]\n",
        encoding="utf-8",
    )
    code, out, err = run(capsys, "routes", "apply", str(path))
    assert (code, out) == (2, "")
    assert err.splitlines() == [
        f"jobwatch: {path}: route 'search-failures' (#1): match.labels.0: invalid regular expression "
        "'(search': missing ), unterminated subpattern at position 0",
        f"jobwatch: {path}: route 'everything' (#2): destinations.0.region: Extra inputs are not permitted",
        f"jobwatch: {path}: route 'everything' (#3): destinations.0.signingSecret: destination secrets live "
        "under 'jobwatch/notify/' (only the notifier may read them)",
        f"jobwatch: {path}: refused, nothing written",
    ]
    # What only the operations can tell (the endpoint rules, secrets, names) is reported the same way.
    path.write_text(
        ROUTES_FILE.replace(BOT, BOT + "-typo")
        + "- name: everything\n"
        + f"  destinations: [{{type: webhook, url: 'https://169.254.169.254', signingSecret: {HOOK}}}]\n",
        encoding="utf-8",
    )
    code, out, err = run(capsys, "routes", "apply", str(path))
    assert code == 2
    assert [line.split(": ", 3)[2] for line in err.splitlines()[:-1]] == [
        "route 'everything' (#3)",
        "route 'search-failures' (#1)",
        "route 'everything' (#3)",
    ]
    assert "route 'everything' (#3): name: route name 'everything' is already used by routes.1" in err
    assert "destinations.0.tokenSecret: secret 'jobwatch/notify/slack-bot-typo' does not exist" in err
    assert "destinations.0.url: webhook URL 'https://169.254.169.254' refused" in err
    assert stored_routes() == [] and email_subscriptions(secrets) == {}

    path.write_text("- name: [unclosed\n", encoding="utf-8")
    code, out, err = run(capsys, "routes", "apply", str(path))
    assert code == 2 and err.startswith(f"jobwatch: {path}: not valid YAML: ") and len(err.splitlines()) == 1
    path.write_text("name: just-one-route\n", encoding="utf-8")
    code, out, err = run(capsys, "routes", "apply", str(path))
    assert (code, err) == (2, f"jobwatch: {path}: must be a list of routes (or a mapping with `routes:`)\n")
    code, out, err = run(capsys, "routes", "apply", str(tmp_path / "missing.yaml"))
    assert code == 2 and err.startswith(
        f"jobwatch: {tmp_path / 'missing.yaml'}: cannot read: FileNotFoundError"
    )


def test_cli_routes_explain(secrets: LocalDeployment, capsys: Capture, tmp_path: Path) -> None:
    key = track({"team": "search"})
    code, out, err = run(capsys, "routes", "explain", key, "--event", "FAILED")
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        f"job {key}, event FAILED (severity error)",
        "routes: the deployment's defaults (no route is stored)",
        "  default-slack  matched      matches",
        "  default-email  matched      matches",
        "deliveries:",
        "  slack  (slack-webhook)  via default-slack",
        "  email  (email)  via default-email",
    ]
    path = tmp_path / "routes.yaml"
    path.write_text(ROUTES_FILE, encoding="utf-8")
    assert run(capsys, "routes", "apply", str(path))[0] == 0
    mail_id = Route.model_validate(yaml.safe_load(ROUTES_FILE)[0]).destinations[1].id
    code, out, err = run(capsys, "routes", "explain", key, "--event", "FAILED")
    assert out.splitlines() == [
        f"job {key}, event FAILED (severity error)",
        "routes:",
        "  search-failures  matched      matches; continue: false, later routes are skipped",
        "  everything       skipped      an earlier route has continue: false",
        "deliveries:",
        f"  slack-app.{CHANNEL}  (slack-app)  via search-failures  mentions <!subteam^S0SEARCH>",
        f"  {mail_id}  (email)  via search-failures  mentions <!subteam^S0SEARCH>",
    ]
    code, out, err = run(capsys, "routes", "explain", key, "--event", "STARTED")
    assert out.splitlines()[2:] == [
        "  search-failures  not matched  event STARTED is not one of FAILED, CANCELED",
        "  everything       matched      matches",
        "deliveries:",
        "  eventbridge."
        + Route.model_validate(EVERYTHING).destinations[0].id.split(".")[1]
        + "  (eventbridge)  via everything",
    ]
    code, out, err = run(capsys, "routes", "explain", key, "--event", "FAILED", "--json")
    assert json.loads(out)["routes"][0]["stoppedHere"] is True
    code, out, err = run(
        capsys, "routes", "explain", "milvus-import.0123456789abcdef0123", "--event", "FAILED"
    )
    assert (code, err) == (1, "jobwatch: no tracked job 'milvus-import.0123456789abcdef0123'\n")


def test_cli_accepts_a_missing_secret_when_told_to(secrets: LocalDeployment, capsys: Capture) -> None:
    args = ["route", "add", "later", "--slack-app", CHANNEL, "--token-secret", BOT + "-later"]
    code, _, err = run(capsys, *args)
    assert code == 2 and "does not exist in Secrets Manager" in err
    assert run(capsys, *args, "--allow-missing-secret")[:2] == (0, "added route later (position 0)\n")


def test_alert_email_events_are_comma_separated_and_checked_at_cold_start() -> None:
    from jobwatch.entrypoints.api import wire
    from jobwatch.settings import SettingsError

    base = {"JOBWATCH_TABLE": "t", "JOBWATCH_TOPIC_ARN": "arn:aws:sns:us-east-1:1:t"}
    settings = ApiSettings.from_env({**base, "JOBWATCH_ALERT_EMAIL_EVENTS": "FAILED, LOST"})
    assert (settings.alert_email_events, settings.email_topic_arn) == (("FAILED", "LOST"), None)
    assert ApiSettings.from_env(base).alert_email_events == ("FAILED", "CANCELED")
    with pytest.raises(SettingsError) as error:
        wire(ApiSettings.from_env({**base, "JOBWATCH_ALERT_EMAIL_EVENTS": "FAILED,FAIL"}))
    assert str(error.value).startswith("JOBWATCH_ALERT_EMAIL_EVENTS is invalid: unknown event 'FAIL'")
