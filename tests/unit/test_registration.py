"""Registration validation: a refused registration names the problem (and the store is never reached).

The SSRF guard is tested on every class of address it refuses, on hostnames that resolve into them
(fake resolvers: no test resolves through real DNS), on IPv6 forms and on numeric-host tricks.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from jobwatch.app.models import JobRegistration, WatchRegistration
from jobwatch.app.registration import (
    RegistrationRefused,
    build_spec,
    build_watch,
    check_endpoint,
    endpoint_refusal,
    normalize_endpoint,
    parse_job_registration,
    parse_pairs,
    watch_id,
)
from jobwatch.domain.endpoints import EndpointPolicy, address_class
from jobwatch.domain.errors import RegistrationError
from jobwatch.settings import EndpointSettings

BASE = {
    "source": "zilliz-import-v1",
    "endpoint": "https://controller.api.gcp-us-west1.zillizcloud.com/",
    "job_id": "job-1",
    "cluster_id": "in01-abc",
}
DNS: dict[str, list[str]] = {
    "controller.api.gcp-us-west1.zillizcloud.com": ["34.120.1.2"],
    "public.example": ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"],
    "sneaky.example": ["127.0.0.1"],
    "metadata.example": ["169.254.169.254"],
    "half-private.example": ["93.184.215.14", "10.0.0.7"],
    "mapped.example": ["::ffff:10.1.2.3"],
    "v6-local.example": ["fe80::1%eth0"],
    "weaviate.internal": ["10.20.30.40"],
    "imds.internal": ["169.254.169.254"],
    "localhost": ["127.0.0.1", "::1"],
    "rebound.localhost": ["10.0.0.1"],
}


def fake_resolver(host: str) -> Sequence[str]:
    if host in DNS:
        return DNS[host]
    raise OSError(f"no such host {host}")


def policy(*, loopback: bool = False, allow: Sequence[str] = ()) -> EndpointPolicy:
    return EndpointPolicy(loopback, tuple(allow), fake_resolver)


def refused(url: str, pol: EndpointPolicy | None = None) -> str:
    with pytest.raises(RegistrationRefused) as info:
        check_endpoint(url, pol or policy())
    assert info.value.field == "endpoint"
    return str(info.value)


# -- specs ---------------------------------------------------------------------------------------------


def test_valid_registration_normalizes_endpoint_and_keeps_key_stable() -> None:
    spec = build_spec(BASE, policy())
    assert spec.endpoint == "https://controller.api.gcp-us-west1.zillizcloud.com"
    again = build_spec({**BASE, "endpoint": "https://CONTROLLER.api.gcp-us-west1.zillizcloud.com"}, policy())
    assert spec.key == again.key


def test_camel_case_fields_and_the_api_model_give_the_same_spec() -> None:
    fields = {
        "source": "zilliz-import-v1",
        "endpoint": "https://public.example",
        "jobId": "j",
        "clusterId": "c",
    }
    from_fields = build_spec(fields, policy())
    from_model = build_spec(JobRegistration.model_validate(fields), policy())
    assert (from_fields.job_id, from_fields.cluster_id) == ("j", "c")
    assert from_fields == from_model


def test_notify_settings_are_checked_against_the_event_names() -> None:
    spec = build_spec({**BASE, "notify": {"events": ["FAILED", "STALLED"], "stallAfterS": 600}}, policy())
    assert spec.notify is not None
    assert (spec.notify.events, spec.notify.stall_after_s) == (["FAILED", "STALLED"], 600)
    with pytest.raises(RegistrationRefused) as info:
        build_spec({**BASE, "notify": {"events": ["FAILD"]}}, policy())
    assert info.value.field == "notify.events"
    assert "unknown event 'FAILD'; valid events: QUEUED, STARTED, SUCCEEDED, FAILED" in info.value.detail


@pytest.mark.parametrize(
    ("change", "message", "field"),
    [
        ({"source": None}, "missing field 'source'", "source"),
        (
            {"source": "mongo-import"},
            "unknown source 'mongo-import'; valid sources: milvus-import, ",
            "source",
        ),
        ({"cluster_id": None}, "needs --cluster-id", "clusterId"),
        ({"job_id": "  "}, "jobId", "jobId"),
        ({"endpoint": "ftp://x.example.com"}, "must be an absolute https:// URL", "endpoint"),
        ({"endpoint": "http://zilliz.example.com"}, "only allowed for loopback", "endpoint"),
        ({"endpoint": "http://127.0.0.1:9000"}, "JOBWATCH_ALLOW_HTTP_LOOPBACK=true", "endpoint"),
        ({"endpoint": "https://user:pw@z.example.com"}, "must not embed credentials", "endpoint"),
        ({"secret_name": "bad name with spaces"}, "secret name", "secretName"),
        ({"labels": {"bad key!": "x"}}, "label key", "labels"),
        ({"options": {"no spaces": "x"}}, "option name", "options"),
        ({"surprise": 1}, "Extra inputs are not permitted", "surprise"),
    ],
)
def test_refusals_name_the_problem_and_the_field(change: dict[str, object], message: str, field: str) -> None:
    fields = {**BASE, **change}
    with pytest.raises(RegistrationError) as info:
        build_spec(fields, policy())
    assert message in str(info.value)
    assert isinstance(info.value, RegistrationRefused) and info.value.field == field


def test_a_missing_scope_field_reads_like_a_flag_on_the_cli_and_a_field_in_the_api() -> None:
    with pytest.raises(RegistrationRefused) as info:
        build_spec({**BASE, "cluster_id": None}, policy())
    assert str(info.value) == "source 'zilliz-import-v1' needs --cluster-id (cluster_id)"
    assert info.value.detail == "clusterId is required for source 'zilliz-import-v1'"
    assert [p.to_wire() for p in info.value.problems()] == [
        {"field": "clusterId", "message": "clusterId is required for source 'zilliz-import-v1'"}
    ]


def test_the_cli_entry_checks_the_source_before_anything_else() -> None:
    with pytest.raises(RegistrationRefused, match=r"^unknown source 'x'; valid sources: "):
        parse_job_registration({"source": "x", "endpoint": 3})


def test_policy_from_settings_carries_the_allowlist() -> None:
    settings = EndpointSettings(
        allow_http_loopback=True, endpoint_allowlist=("10.0.0.0/8", "weaviate.internal")
    )
    pol = EndpointPolicy.from_settings(settings, fake_resolver)
    assert check_endpoint("https://weaviate.internal:8080/", pol) == "https://weaviate.internal:8080"
    assert check_endpoint("http://127.0.0.1:9000", pol) == "http://127.0.0.1:9000"


# -- the SSRF guard --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("169.254.169.254", "link-local"),
        ("169.254.0.1", "link-local"),
        ("fe80::1", "link-local"),
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("::1", "loopback"),
        ("10.0.0.1", "private"),
        ("172.16.0.1", "private"),
        ("172.31.255.254", "private"),
        ("192.168.1.1", "private"),
        ("fc00::1", "private"),
        ("fd12:3456::1", "private"),
        ("100.64.0.1", "shared CGNAT"),
        ("100.127.255.254", "shared CGNAT"),
        ("224.0.0.251", "multicast"),
        ("ff02::1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("240.0.0.1", "reserved"),
        ("192.0.2.1", "private"),
        ("198.18.0.1", "private"),
        ("::ffff:169.254.169.254", "link-local IPv4 inside IPv6"),
        ("::ffff:127.0.0.1", "loopback IPv4 inside IPv6"),
        ("::ffff:10.0.0.1", "private IPv4 inside IPv6"),
        ("64:ff9b::a9fe:a9fe", "link-local IPv4 inside IPv6"),
        ("2002:a00:1::", "private IPv4 inside IPv6"),
    ],
)
def test_every_internal_address_class_is_refused(address: str, kind: str) -> None:
    import ipaddress

    assert address_class(ipaddress.ip_address(address)) == kind
    host = f"[{address}]" if ":" in address else address
    assert f"a {kind} address" in refused(f"https://{host}/v1")


@pytest.mark.parametrize("address", ["93.184.215.14", "34.120.1.2", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"])
def test_public_addresses_pass(address: str) -> None:
    import ipaddress

    assert address_class(ipaddress.ip_address(address)) is None
    host = f"[{address}]" if ":" in address else address
    assert check_endpoint(f"https://{host}", policy()) == f"https://{host}"


def test_the_metadata_address_is_refused_by_name_and_by_number() -> None:
    assert "169.254.169.254 is a link-local address" in refused("https://169.254.169.254/latest/meta-data")
    assert "metadata.example resolves to 169.254.169.254, a link-local" in refused("https://metadata.example")


def test_a_hostname_resolving_to_loopback_is_refused() -> None:
    assert "sneaky.example resolves to 127.0.0.1, a loopback address" in refused("https://sneaky.example")
    # The local-development flag admits loopback by name only, never a name that resolves there.
    assert "a loopback address" in refused("https://sneaky.example", policy(loopback=True))
    # Even with loopback allowed for the local simulators, http needs a loopback *name*.
    assert "plain http is only allowed for loopback" in refused(
        "http://sneaky.example", policy(loopback=True)
    )


def test_any_internal_address_among_several_refuses_the_host() -> None:
    assert "10.0.0.7, a private address" in refused("https://half-private.example")


def test_ipv6_forms_from_the_resolver_are_normalised() -> None:
    assert "::ffff:a01:203, a private IPv4 inside IPv6 address" in refused("https://mapped.example")
    assert "fe80::1, a link-local address" in refused("https://v6-local.example")
    assert check_endpoint("https://public.example", policy()) == "https://public.example"


@pytest.mark.parametrize(
    "url",
    [
        "http://2130706433",
        "https://2130706433",
        "https://0x7f.1",
        "https://0x7f000001",
        "https://0177.0.0.1",
        "https://127.1",
        "https://017700000001",
        "https://169.254.43518",
    ],
)
def test_numeric_host_tricks_are_refused_before_resolution(url: str) -> None:
    message = refused(url, policy(loopback=True, allow=["0.0.0.0/0"]))
    assert "refused" in message


def test_the_real_resolver_would_read_numeric_tricks_as_loopback() -> None:
    """Why the tricks are refused: the C resolver turns them into 127.0.0.1 without any DNS query."""
    from jobwatch.app.registration import system_resolver

    assert system_resolver("2130706433") == ["127.0.0.1"]
    assert system_resolver("0x7f.1") == ["127.0.0.1"]


def test_loopback_is_allowed_only_with_the_flag() -> None:
    assert "loopback" in refused("https://127.0.0.1:9000")
    assert check_endpoint("https://127.0.0.1:9000", policy(loopback=True)) == "https://127.0.0.1:9000"
    assert check_endpoint("http://localhost:9000/", policy(loopback=True)) == "http://localhost:9000"
    # A loopback *name* that resolves elsewhere is still refused.
    assert "resolves to non-loopback 10.0.0.1" in refused("http://rebound.localhost", policy(loopback=True))


def test_the_allowlist_exempts_cidrs_and_hostnames_but_names_never_exempt_link_local() -> None:
    assert check_endpoint("https://10.1.2.3", policy(allow=["10.0.0.0/8"])) == "https://10.1.2.3"
    assert "private" in refused("https://192.168.0.1", policy(allow=["10.0.0.0/8"]))
    assert check_endpoint("https://weaviate.internal", policy(allow=["weaviate.internal"]))
    assert "link-local" in refused("https://imds.internal", policy(allow=["imds.internal"]))
    assert check_endpoint("https://imds.internal", policy(allow=["169.254.169.254/32"]))
    assert check_endpoint("https://[::ffff:10.0.0.1]", policy(allow=["10.0.0.0/8"]))


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("https://nowhere.example", "does not resolve"),
        ("https://public.example:99999", "invalid port"),
        ("https://public.example?x=1", "query string"),
        ("https://bücher.example", "must be ASCII"),
        ("https://", "absolute https:// URL"),
        ("//public.example", "absolute https:// URL"),
        ("https://[fe80::1", "not a valid URL"),
        ("https://bad_host!.example", "not a valid host name"),
        ("https://a..b", "not a valid host name"),
        ("https://-x.example", "not a valid host name"),
    ],
)
def test_other_refusals(url: str, message: str) -> None:
    assert message in refused(url)


def test_endpoint_refusal_is_the_poll_time_recheck() -> None:
    assert endpoint_refusal("https://public.example", policy()) is None
    assert "loopback" in (endpoint_refusal("https://sneaky.example", policy()) or "")


def test_http_loopback_only_when_allowed() -> None:
    assert normalize_endpoint("http://127.0.0.1:8080/", allow_http_loopback=True) == "http://127.0.0.1:8080"
    assert normalize_endpoint("http://localhost:1", allow_http_loopback=True, resolver=fake_resolver) == (
        "http://localhost:1"
    )
    assert normalize_endpoint("http://[::1]:1", allow_http_loopback=True) == "http://[::1]:1"
    with pytest.raises(RegistrationError):
        normalize_endpoint("http://10.0.0.1:1", allow_http_loopback=True)


# -- watches ---------------------------------------------------------------------------------------------


def test_watch_ids_are_stable_and_scope_fields_are_required_per_kind() -> None:
    fields = {"kind": "zilliz-cloud-v1", "endpoint": "https://public.example/", "clusterId": "in01-x"}
    watch = build_watch(fields, policy(), "2026-01-01T00:00:00.000Z")
    again = build_watch({**fields, "endpoint": "https://PUBLIC.example"}, policy(), "later")
    assert watch.id == again.id == watch_id("zilliz-cloud-v1", "https://public.example", "in01-x//")
    assert (watch.cluster_id, watch.backend, watch.db_name) == ("in01-x", None, None)
    with pytest.raises(RegistrationRefused) as info:
        build_watch({**fields, "clusterId": None}, policy(), "now")
    assert info.value.field == "clusterId"
    with pytest.raises(RegistrationRefused) as info:
        build_watch({"kind": "weaviate-backups", "endpoint": "https://public.example"}, policy(), "now")
    assert info.value.field == "backend"
    with pytest.raises(RegistrationRefused) as info:
        build_watch({"kind": "qdrant", "endpoint": "https://public.example"}, policy(), "now")
    assert info.value.field == "kind" and "zilliz-cloud-v1" in info.value.detail
    milvus = build_watch(
        WatchRegistration(
            kind="milvus", endpoint="https://public.example", db_name="sales", cluster_id="ignored"
        ),
        policy(),
        "now",
    )
    assert (milvus.db_name, milvus.cluster_id) == ("sales", None)


def test_watch_endpoints_get_the_same_ssrf_guard() -> None:
    with pytest.raises(RegistrationRefused, match="link-local"):
        build_watch({"kind": "milvus", "endpoint": "https://metadata.example"}, policy(), "now")


def test_pairs() -> None:
    assert parse_pairs(["team=ml", "env = prod"], "label") == {"team": "ml", "env": "prod"}
    with pytest.raises(RegistrationError, match="key=value"):
        parse_pairs(["novalue"], "label")


# -- path segments -------------------------------------------------------------------------------------

WEAVIATE = {"source": "weaviate-export", "endpoint": "https://public.example", "backend": "s3", "job_id": "x"}
PINECONE = {"source": "pinecone-import", "endpoint": "https://public.example", "job_id": "101"}
CANNOT_BE_ONE_SEGMENT = ["..", ".", "a/b", "/", "a\\b"]
ONE_SEGMENT = ["?x=1", "#frag", "%2e%2e", "%2F", "a b", "ünï", "...", "~"]


@pytest.mark.parametrize("job_id", CANNOT_BE_ONE_SEGMENT)
@pytest.mark.parametrize("base", [WEAVIATE, PINECONE], ids=["weaviate-export", "pinecone-import"])
def test_a_job_id_that_cannot_be_one_path_segment_is_refused(base: dict[str, str], job_id: str) -> None:
    with pytest.raises(RegistrationRefused) as info:
        build_spec({**base, "job_id": job_id}, policy())
    assert info.value.field == "jobId"
    assert str(info.value).startswith(f"jobId {job_id!r} cannot be one URL path segment: it ")
    assert [p.to_wire() for p in info.value.problems()] == [
        {"field": "jobId", "message": str(info.value).removeprefix("jobId ")}
    ]


@pytest.mark.parametrize("backend", [*CANNOT_BE_ONE_SEGMENT, "\x00"])
def test_a_backend_that_cannot_be_one_path_segment_is_refused(backend: str) -> None:
    with pytest.raises(RegistrationRefused) as info:
        build_spec({**WEAVIATE, "backend": backend}, policy())
    assert info.value.field == "backend"
    with pytest.raises(RegistrationRefused) as info:
        build_watch(
            {"kind": "weaviate-backups", "endpoint": "https://public.example", "backend": backend},
            policy(),
            "n",
        )
    assert info.value.field == "backend"


def test_the_refusals_say_why_in_one_line() -> None:
    reasons = {}
    for job_id in ("..", ".", "a/b", "a\\b"):
        with pytest.raises(RegistrationRefused) as info:
            build_spec({**WEAVIATE, "job_id": job_id}, policy())
        reasons[job_id] = str(info.value)
    assert reasons == {
        "..": "jobId '..' cannot be one URL path segment: it is a dot segment, which URL resolution removes",
        ".": "jobId '.' cannot be one URL path segment: it is a dot segment, which URL resolution removes",
        "a/b": "jobId 'a/b' cannot be one URL path segment: it contains '/' at position 1, which would split "
        "it into two path segments",
        "a\\b": "jobId 'a\\\\b' cannot be one URL path segment: it contains '\\\\' at position 1, which "
        "many URL parsers and servers read as '/'",
    }


@pytest.mark.parametrize("value", ONE_SEGMENT)
def test_ids_and_backends_that_can_be_one_segment_are_kept_as_given(value: str) -> None:
    assert build_spec({**WEAVIATE, "job_id": value}, policy()).job_id == value
    assert build_spec({**WEAVIATE, "backend": value}, policy()).backend == value
    assert build_spec({**PINECONE, "job_id": value}, policy()).job_id == value


@pytest.mark.parametrize("job_id", ["..", "a/b"])
def test_sources_that_never_put_the_id_in_a_path_accept_it(job_id: str) -> None:
    """Zilliz and Milvus send the id as a query parameter or JSON value: no path rule applies."""
    assert build_spec({**BASE, "job_id": job_id}, policy()).job_id == job_id
    milvus = {"source": "milvus-import", "endpoint": "https://public.example", "job_id": job_id}
    assert build_spec(milvus, policy()).job_id == job_id
