"""Registration validation: a refused registration names the problem (and the store is never reached)."""

from __future__ import annotations

import pytest

from jobwatch.errors import RegistrationError
from jobwatch.registration import build_spec, normalize_endpoint, parse_pairs

BASE = {
    "source": "zilliz-import-v1",
    "endpoint": "https://controller.api.gcp-us-west1.zillizcloud.com/",
    "job_id": "job-1",
    "cluster_id": "in01-abc",
}


def test_valid_registration_normalizes_endpoint_and_keeps_key_stable() -> None:
    spec = build_spec(BASE, allow_http_loopback=False)
    assert spec.endpoint == "https://controller.api.gcp-us-west1.zillizcloud.com"
    again = build_spec(
        {**BASE, "endpoint": "https://CONTROLLER.api.gcp-us-west1.zillizcloud.com"}, allow_http_loopback=False
    )
    assert spec.key == again.key


def test_camel_case_fields_are_accepted() -> None:
    spec = build_spec(
        {"source": "zilliz-import-v1", "endpoint": "https://z.example.com", "jobId": "j", "clusterId": "c"},
        allow_http_loopback=False,
    )
    assert (spec.job_id, spec.cluster_id) == ("j", "c")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"source": None}, "missing field 'source'"),
        ({"source": "mongo-import"}, "unknown source 'mongo-import'; valid sources: "),
        ({"cluster_id": None}, "needs --cluster-id"),
        ({"job_id": "  "}, "jobId"),
        ({"endpoint": "ftp://x.example.com"}, "must be an absolute https:// URL"),
        ({"endpoint": "http://zilliz.example.com"}, "only allowed for loopback"),
        ({"endpoint": "http://127.0.0.1:9000"}, "JOBWATCH_ALLOW_HTTP_LOOPBACK=true"),
        ({"endpoint": "https://user:pw@z.example.com"}, "must not embed credentials"),
        ({"secret_name": "bad name with spaces"}, "secret name"),
        ({"labels": {"bad key!": "x"}}, "label key"),
    ],
)
def test_refusals_name_the_problem(change: dict[str, object], message: str) -> None:
    fields = {**BASE, **change}
    with pytest.raises(RegistrationError) as info:
        build_spec(fields, allow_http_loopback=False)
    assert message in str(info.value)


def test_http_loopback_only_when_allowed() -> None:
    assert normalize_endpoint("http://127.0.0.1:8080/", allow_http_loopback=True) == "http://127.0.0.1:8080"
    assert normalize_endpoint("http://localhost:1", allow_http_loopback=True) == "http://localhost:1"
    assert normalize_endpoint("http://[::1]:1", allow_http_loopback=True) == "http://[::1]:1"
    with pytest.raises(RegistrationError):
        normalize_endpoint("http://10.0.0.1:1", allow_http_loopback=True)


def test_pairs() -> None:
    assert parse_pairs(["team=ml", "env = prod"], "label") == {"team": "ml", "env": "prod"}
    with pytest.raises(RegistrationError, match="key=value"):
        parse_pairs(["novalue"], "label")
