"""The registration API handler driven with API Gateway REST proxy events, against moto and the simulator.

Events are built exactly as `jobwatch api serve` builds them from real requests (and the committed
events/api-*.json samples run too), so every route and every error class is covered at the Lambda
boundary: the JSON body, the status and the content type are what API Gateway would return.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from jobwatch_tools.api_server import build_event
from jobwatch_tools.local import api_handler

from jobwatch.adapters import aws
from jobwatch.adapters.dynamodb.jobs import DynamoJobStore
from jobwatch.api.routes import MAX_BODY_BYTES, ROUTES
from jobwatch.app import registration
from jobwatch.sources import source_names
from jobwatch_devkit.harness import LocalDeployment
from jobwatch_devkit.simulator import UpstreamSimulator, state
from jobwatch_devkit.slack_sink import SlackSink

pytestmark = pytest.mark.integration

EVENTS = Path(__file__).resolve().parents[2] / "events"
EXPORT = "weaviate-export"
ZILLIZ = "zilliz-import-v1"
CLUSTER = "in01-api0001"

Call = Callable[..., tuple[int, Any]]


def _tid(job_key: str, version: int) -> str:
    """The id of a transition the job's current life recorded at `version` (docs/decisions.md, D28)."""
    from jobwatch_tools.local import list_jobs

    from jobwatch.domain.transitions import transition_id

    (job,) = [job for job in list_jobs() if job.key == job_key]
    return transition_id(job_key, version, life=job.life)


def _call(
    method: str,
    path: str,
    body: Any = None,
    *,
    raw: bytes | None = None,
    headers: Mapping[str, str] | None = None,
) -> tuple[int, Any]:
    """One request through the Lambda handler: (status, decoded JSON body)."""
    payload = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
    sent = {"Content-Type": "application/json", **(headers or {})}
    event = build_event(method, path, list(sent.items()), payload, ROUTES)
    result = api_handler(event, None)
    content_types = {k.lower(): v for k, v in (result.get("multiValueHeaders") or {}).items()}
    content_types.update({k.lower(): [v] for k, v in (result.get("headers") or {}).items()})
    assert content_types["content-type"] == ["application/json"], result
    return result["statusCode"], json.loads(result["body"])


@pytest.fixture
def call(deployment: LocalDeployment) -> Call:
    return _call


def _export(sim_url: str, job_id: str, **extra: Any) -> dict[str, Any]:
    return {"source": EXPORT, "endpoint": sim_url, "jobId": job_id, "backend": "s3", **extra}


def _is_error(body: Any) -> bool:
    return set(body) == {"message", "errors"} and isinstance(body["errors"], list)


# -- POST /jobs ---------------------------------------------------------------------------------------------


def test_post_jobs_is_201_then_200_with_the_same_resource(call: Call, sim_url: str) -> None:
    status, created = call("POST", "/jobs", _export(sim_url, "exp-api", labels={"team": "search"}))
    assert status == 201
    assert created["key"].startswith("weaviate-export.")
    assert (created["phase"], created["snapshot"], created["version"]) == (None, None, 0)
    assert created["spec"]["labels"] == {"team": "search"}
    assert created["recentTransitions"] is None
    # The same job written differently (trailing slash, padded id) is the same job: 200, same resource.
    status, again = call("POST", "/jobs", _export(sim_url + "/", " exp-api ", labels={"team": "search"}))
    assert (status, again) == (200, created)


def test_post_jobs_keeps_notify_settings(call: Call, sim_url: str) -> None:
    notify = {"events": ["FAILED", "STALLED"], "stallAfterS": 900, "maxDurationS": 7200}
    status, job = call("POST", "/jobs", _export(sim_url, "exp-notify", notify=notify))
    assert status == 201
    assert job["spec"]["notify"] == notify


def test_malformed_json_is_400(call: Call) -> None:
    status, body = call("POST", "/jobs", raw=b'{"source": "weaviate-export",')
    assert status == 400 and _is_error(body)
    assert body["message"] == "request body is not valid JSON"
    assert body["errors"][0]["field"] == "body"


def test_schema_violations_are_422_with_one_message_per_field(call: Call, sim_url: str) -> None:
    status, body = call(
        "POST",
        "/jobs",
        {
            "source": EXPORT,
            "endpoint": sim_url,
            "jobId": "",
            "labels": {"bad key": "x"},
            "secretName": "no spaces allowed",
            "notify": {"events": ["FAILD"], "stallAfterS": 5},
            "surprise": True,
        },
    )
    assert status == 422 and _is_error(body)
    fields = {error["field"]: error["message"] for error in body["errors"]}
    assert set(fields) == {"jobId", "labels", "secretName", "notify.events", "notify.stallAfterS", "surprise"}
    assert fields["jobId"] == "String should have at least 1 character"
    assert fields["secretName"] == "secret name has characters Secrets Manager does not allow"
    assert fields["notify.events"].startswith("unknown event 'FAILD'; valid events: QUEUED, STARTED")
    assert fields["surprise"] == "Extra inputs are not permitted"


def test_missing_fields_and_wrong_body_types_are_422(call: Call) -> None:
    status, body = call("POST", "/jobs", {"source": EXPORT})
    assert status == 422
    assert {e["field"] for e in body["errors"]} == {"endpoint", "jobId"}
    status, body = call("POST", "/jobs", [1, 2])
    assert status == 422 and body["errors"][0]["field"] == "body"
    status, body = call("POST", "/jobs")
    assert status == 422 and body["errors"] == [{"field": "body", "message": "Field required"}]


def test_unknown_source_is_422_listing_the_valid_ones(call: Call, sim_url: str) -> None:
    status, body = call("POST", "/jobs", {**_export(sim_url, "x"), "source": "weaviate-exprt"})
    assert status == 422
    (error,) = body["errors"]
    assert error["field"] == "source"
    assert error["message"] == f"unknown source 'weaviate-exprt'; valid sources: {', '.join(source_names())}"


def test_source_specific_fields_are_422_on_that_field(call: Call, sim_url: str) -> None:
    status, body = call("POST", "/jobs", {"source": ZILLIZ, "endpoint": sim_url, "jobId": "job-1"})
    assert status == 422
    assert body["errors"] == [
        {"field": "clusterId", "message": "clusterId is required for source 'zilliz-import-v1'"}
    ]


def test_oversized_body_is_413_and_non_json_is_415(call: Call, sim_url: str) -> None:
    big = _export(sim_url, "exp-big", labels={"blob": "x" * (MAX_BODY_BYTES + 1)})
    status, body = call("POST", "/jobs", big)
    assert status == 413 and _is_error(body)
    status, body = call(
        "POST", "/jobs", raw=b"source=weaviate-export", headers={"Content-Type": "text/plain"}
    )
    assert status == 415 and _is_error(body)
    status, body = call("POST", "/jobs", raw=b"\xff\xfe", headers={"Content-Type": "application/json"})
    assert status == 400 and _is_error(body)
    assert call("GET", "/jobs")[1]["jobs"] == []


@pytest.mark.parametrize("depth", [17, 10_000, 30_000])
def test_deeply_nested_json_is_400_never_500(call: Call, depth: int) -> None:
    """A body nested 10,000 deep used to raise RecursionError inside the resolver (HTTP 500)."""
    raw = b'{"source": ' + b"[" * depth + b"]" * depth + b"}"
    if len(raw) > MAX_BODY_BYTES:  # deeper than fits: the size rule answers first
        status, body = call("POST", "/jobs", raw=raw)
        assert status == 413 and _is_error(body)
        return
    status, body = call("POST", "/jobs", raw=raw)
    assert status == 400 and body["message"] == "request body nests too deeply"
    assert call("GET", "/jobs")[1]["jobs"] == []


@pytest.mark.parametrize(
    ("endpoint", "why"),
    [
        ("https://169.254.169.254/latest/meta-data", "link-local"),
        ("https://10.0.0.8:8080", "private"),
        ("https://[::ffff:169.254.169.254]", "link-local IPv4 inside IPv6"),
        ("https://100.100.100.200", "shared CGNAT"),
        ("https://0x7f.1", "not a canonical dotted-quad"),
        ("http://weaviate.example.com", "plain http is only allowed for loopback"),
    ],
)
def test_ssrf_attempts_are_422_and_nothing_is_written(call: Call, endpoint: str, why: str) -> None:
    status, body = call(
        "POST", "/jobs", {"source": EXPORT, "endpoint": endpoint, "jobId": "x", "backend": "s3"}
    )
    assert status == 422
    (error,) = body["errors"]
    assert error["field"] == "endpoint" and why in error["message"]
    assert body["message"].startswith("refused, nothing written: ")
    assert call("GET", "/jobs") == (200, {"jobs": [], "nextToken": None})


def test_a_hostname_resolving_to_loopback_is_refused(call: Call, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registration, "RESOLVER", lambda host: ["127.0.0.1"])
    status, body = call("POST", "/watches", {"kind": "milvus", "endpoint": "https://milvus.attacker.example"})
    assert status == 422
    assert "resolves to 127.0.0.1, a loopback address" in body["errors"][0]["message"]
    assert call("GET", "/watches") == (200, {"watches": []})


# -- GET /jobs, GET/DELETE /jobs/{key} ----------------------------------------------------------------------


def test_list_filters_and_pages(
    call: Call, deployment: LocalDeployment, sim: UpstreamSimulator, sim_url: str
) -> None:
    sim.add_job(EXPORT, "exp-run", [state("TRANSFERRING")], backend="s3")
    sim.add_job(EXPORT, "exp-ok", [state("SUCCESS", objects=3)], backend="s3")
    sim.add_job(ZILLIZ, "job-run", [state(ready=0.5)], cluster_id=CLUSTER)
    keys = {}
    for job_id, labels in (("exp-run", {"team": "a"}), ("exp-ok", {"team": "b"})):
        keys[job_id] = call("POST", "/jobs", _export(sim_url, job_id, labels=labels))[1]["key"]
    keys["job-run"] = call(
        "POST",
        "/jobs",
        {
            "source": ZILLIZ,
            "endpoint": sim_url,
            "jobId": "job-run",
            "clusterId": CLUSTER,
            "labels": {"team": "a"},
        },
    )[1]["key"]
    deployment.poll()

    def listed(query: str) -> list[str]:
        status, body = call("GET", f"/jobs?{query}")
        assert status == 200, body
        return [job["spec"]["jobId"] for job in body["jobs"]]

    assert listed("") == ["exp-run", "exp-ok", "job-run"]
    assert listed("phase=RUNNING") == ["exp-run", "job-run"]
    assert listed("phase=SUCCEEDED") == ["exp-ok"]
    assert listed(f"source={ZILLIZ}") == ["job-run"]
    assert listed("label=team%3Da") == ["exp-run", "job-run"]
    assert listed("label=team%3Da&source=weaviate-export") == ["exp-run"]
    assert listed("label=team%3Da&label=env%3Dprod") == []

    seen, token, pages = [], None, 0
    while True:
        status, page = call("GET", "/jobs?limit=2" + (f"&nextToken={token}" if token else ""))
        assert status == 200 and len(page["jobs"]) <= 2
        seen += [job["key"] for job in page["jobs"]]
        pages += 1
        token = page["nextToken"]
        if token is None:
            break
    assert (seen, pages) == ([keys["exp-run"], keys["exp-ok"], keys["job-run"]], 2)


@pytest.mark.parametrize(
    ("query", "field", "text"),
    [
        ("nextToken=not-a-token", "query.nextToken", "nextToken is not one this API returned"),
        ("limit=0", "query.limit", "greater than or equal to 1"),
        ("limit=1000", "query.limit", "less than or equal to 200"),
        ("phase=DONE", "query.phase", "'PENDING'"),
        ("source=mongo", "source", "valid sources: milvus-import"),
        ("label=novalue", "label", "must look like key=value"),
    ],
)
def test_bad_list_parameters_are_422(call: Call, query: str, field: str, text: str) -> None:
    status, body = call("GET", f"/jobs?{query}")
    assert status == 422 and _is_error(body)
    (error,) = body["errors"]
    assert error["field"] == field and text in error["message"]


def test_show_has_recent_transitions_and_delete_stops_tracking(
    call: Call, deployment: LocalDeployment, sim: UpstreamSimulator, sim_url: str, store: DynamoJobStore
) -> None:
    sim.add_job(EXPORT, "exp-show", [state("STARTED"), state("SUCCESS", objects=9)], backend="s3")
    key = call("POST", "/jobs", _export(sim_url, "exp-show"))[1]["key"]
    deployment.poll()
    deployment.poll()
    status, job = call("GET", f"/jobs/{key}")
    assert status == 200
    assert (job["phase"], job["version"]) == ("SUCCEEDED", 2)
    assert [t["event"] for t in job["recentTransitions"]] == ["SUCCEEDED", "STARTED"]
    assert job["recentTransitions"][0]["transitionId"] == _tid(key, 2)

    assert call("DELETE", f"/jobs/{key}") == (200, {"deleted": key})
    assert store.get_job(key) is None
    status, body = call("DELETE", f"/jobs/{key}")
    assert status == 404 and body["message"] == f"no tracked job {key!r}"
    assert call("GET", f"/jobs/{key}")[0] == 404


def test_unknown_keys_routes_and_methods_are_404(call: Call) -> None:
    for method, path in (
        ("GET", "/jobs/weaviate-export.0123456789abcdef0123"),
        ("GET", "/jobs/not-a-key"),
        ("DELETE", "/jobs/" + "x" * 150),
        ("POST", "/jobs/zilliz-import-v1.0123456789abcdef0123/test"),
        ("DELETE", "/watches/milvus.0123456789abcdef"),
        ("GET", "/nope"),
        ("PUT", "/jobs"),
        ("GET", "/jobs/a/b/c"),
    ):
        status, body = call(method, path)
        assert status == 404 and _is_error(body), (method, path, body)


# -- PUT/DELETE /jobs/{key}/snooze and /mute ---------------------------------------------------------------


def test_snooze_and_mute_through_the_api_hold_back_what_they_should(
    call: Call, deployment: LocalDeployment, sim: UpstreamSimulator, sim_url: str
) -> None:
    sim.add_job(EXPORT, "exp-quiet", [state("STARTED"), state("SUCCESS", objects=9)], backend="s3")
    key = call("POST", "/jobs", _export(sim_url, "exp-quiet"))[1]["key"]
    status, snoozed = call("PUT", f"/jobs/{key}/snooze", {"for": "4h"})
    assert status == 200 and snoozed["quiet"]["snoozedBy"] and snoozed["suppressed"] == 0
    assert snoozed["version"] == 1  # the job's version moved: a poller run that read it first retries
    deployment.poll()  # STARTED, held back
    status, muted = call("PUT", f"/jobs/{key}/mute")
    assert status == 200 and muted["quiet"]["muted"] and muted["suppressed"] == 0  # a new mute counts afresh
    assert call("DELETE", f"/jobs/{key}/mute")[0] == 200
    assert call("DELETE", f"/jobs/{key}/snooze")[1]["quiet"] == {
        "muted": False,
        "mutedBy": None,
        "snoozedUntil": None,
        "snoozedBy": None,
    }
    deployment.poll()  # SUCCEEDED, published
    status, job = call("GET", f"/jobs/{key}")
    assert [t["event"] for t in job["recentTransitions"]] == ["SUCCEEDED"]
    assert job["phase"] == "SUCCEEDED"


@pytest.mark.parametrize(
    ("body", "field", "text"),
    [
        ({"for": "forever"}, "for", "is not a duration"),
        ({"for": "31d"}, "for", "between 1 minute and 30 days"),
        ({}, "for", "Field required"),
        ({"for": "4h", "until": "x"}, "until", "Extra inputs are not permitted"),
    ],
)
def test_bad_snoozes_are_422_and_change_nothing(
    call: Call, sim_url: str, body: dict[str, Any], field: str, text: str
) -> None:
    key = call("POST", "/jobs", _export(sim_url, "exp-bad-snooze"))[1]["key"]
    status, answer = call("PUT", f"/jobs/{key}/snooze", body)
    assert status == 422 and answer["errors"][0]["field"] == field and text in answer["errors"][0]["message"]
    assert call("GET", f"/jobs/{key}")[1]["version"] == 0
    assert call("PUT", "/jobs/weaviate-export.0123456789abcdef0123/mute")[0] == 404


# -- POST /jobs/{key}/test ----------------------------------------------------------------------------------


def test_test_notification_goes_through_sns_to_slack_and_email_and_changes_nothing(
    call: Call, deployment: LocalDeployment, sink: SlackSink, sim_url: str, store: DynamoJobStore
) -> None:
    key = call("POST", "/jobs", _export(sim_url, "exp-test", labels={"team": "search"}))[1]["key"]
    status, sent = call("POST", f"/jobs/{key}/test")
    assert status == 202
    assert sent["transitionId"].startswith(f"{key}#test-") and sent["messageId"]
    (published,) = deployment.published()
    assert (published.event, published.severity, published.transition_id) == (
        "TEST",
        "info",
        sent["transitionId"],
    )
    assert published.job.labels == {"team": "search"}
    report = deployment.deliver()
    # One drain reaches both: the default Slack webhook, and the alert e-mail address, which TEST
    # always reaches, whatever AlertEmailEvents says.
    assert (report.delivered, report.duplicates, report.dead_lettered) == (2, 0, 0)
    (message,) = sink.messages()
    assert "Test notification" in json.dumps(message.payload)
    (email,) = deployment.emails()
    assert (email.event, email.transition_id) == ("TEST", sent["transitionId"])
    assert "only checks that jobwatch notifications reach you" in email.body
    job = store.get_job(key)
    assert job is not None and (job.version, job.snapshot) == (0, None)
    assert store.recent_transitions(key) == []


# -- watches ---------------------------------------------------------------------------------------------


def test_watches_are_idempotent_listed_and_removed(call: Call, sim_url: str) -> None:
    watch = {"kind": "zilliz-cloud-v2", "endpoint": sim_url, "clusterId": CLUSTER, "labels": {"team": "ml"}}
    status, created = call("POST", "/watches", watch)
    assert status == 201
    assert created["id"].startswith("zilliz-cloud-v2.") and created["primedAt"] is None
    assert call("POST", "/watches", watch) == (200, created)
    assert call("GET", "/watches") == (200, {"watches": [created]})
    status, body = call("POST", "/watches", {"kind": "weaviate-backups", "endpoint": sim_url})
    assert status == 422 and body["errors"] == [
        {"field": "backend", "message": "backend is required for watch 'weaviate-backups'"}
    ]
    status, body = call("POST", "/watches", {"kind": "pinecone", "endpoint": sim_url})
    assert status == 422 and body["errors"][0]["field"] == "kind"
    assert call("DELETE", f"/watches/{created['id']}") == (200, {"deleted": created["id"]})
    assert call("DELETE", f"/watches/{created['id']}")[0] == 404
    assert call("GET", "/watches") == (200, {"watches": []})


# -- the committed sample events ---------------------------------------------------------------------------


def test_sample_events_run_through_the_handler(deployment: LocalDeployment) -> None:
    def run(name: str) -> tuple[int, Any]:
        event = json.loads((EVENTS / name).read_text(encoding="utf-8"))
        result = api_handler(event, None)
        return result["statusCode"], json.loads(result["body"])

    # The sample events name secrets that a deployment would hold (registration checks they exist).
    for name in ("jobwatch/zilliz", "jobwatch/zilliz-v2"):
        aws.secretsmanager().create_secret(Name=name, SecretString="sample-key")
    status, job = run("api-track-job.json")
    assert status == 201
    show = json.loads((EVENTS / "api-show-job.json").read_text(encoding="utf-8"))
    assert show["pathParameters"] == {"key": job["key"]}, "regenerate the api-*.json events: the key changed"
    assert run("api-track-job.json")[0] == 200
    assert run("api-list-jobs.json") == (200, {"jobs": [], "nextToken": None})  # not polled: no phase yet
    assert run("api-show-job.json")[0] == 200
    assert run("api-test-job.json")[0] == 202
    status, snoozed = run("api-snooze-job.json")
    assert status == 200 and snoozed["quiet"]["snoozedUntil"] is not None
    status, muted = run("api-mute-job.json")
    assert status == 200 and muted["quiet"]["muted"] and muted["quiet"]["snoozedUntil"] is not None
    status, unmuted = run("api-unmute-job.json")
    assert status == 200 and unmuted["quiet"] == snoozed["quiet"]
    status, unsnoozed = run("api-unsnooze-job.json")
    assert status == 200 and unsnoozed["quiet"]["snoozedUntil"] is None
    assert run("api-untrack-job.json") == (200, {"deleted": job["key"]})
    status, watch = run("api-add-watch.json")
    assert status == 201
    assert run("api-list-watches.json") == (200, {"watches": [watch]})
    assert run("api-remove-watch.json") == (200, {"deleted": watch["id"]})
