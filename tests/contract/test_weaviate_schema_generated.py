"""Property tests: bodies generated from Weaviate's real OpenAPI definitions, and fuzzing of every source.

The translator below covers exactly the JSON-schema subset those definitions use (object, properties,
additionalProperties, $ref, enum, string, integer, number, array, date-time) and refuses anything else,
so a new construct in an updated spec fails loudly instead of being generated wrongly.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jobwatch.domain.errors import PollError
from jobwatch.domain.model import Phase, Snapshot
from jobwatch.sources import get_source
from jobwatch.sources.base import HttpResponse, Source
from jobwatch_devkit.reference import reference_dir

REFERENCE = reference_dir()
SCHEMAS = REFERENCE / "weaviate" / "export-and-backup-schemas.json"
DEFINITIONS: dict[str, Any] = json.loads(SCHEMAS.read_text())["definitions"] if SCHEMAS.is_file() else {}

BOUNDED = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)
FUZZ = settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)
"""Mutations of real bodies reach the deep readers; this budget caught an injected reader bug in all four
sources that use it."""
SHALLOW_FUZZ = settings(FUZZ, max_examples=60)
"""Arbitrary bytes/JSON mostly stop at the first check; fewer examples buy the same coverage."""

ALWAYS_SENT = {
    "ExportStatusResponse": {"status"},
    "BackupCreateStatusResponse": {"status"},
    "BackupRestoreStatusResponse": {"status"},
}
"""The spec marks nothing required, but the server always sends `status` (Go *string / no omitempty)."""

EXPORT_PHASES = {
    "STARTED": Phase.RUNNING,
    "TRANSFERRING": Phase.RUNNING,
    "SUCCESS": Phase.SUCCEEDED,
    "FAILED": Phase.FAILED,
    "CANCELED": Phase.CANCELED,
}
BACKUP_PHASES = {
    "STARTED": Phase.RUNNING,
    "TRANSFERRING": Phase.RUNNING,
    "TRANSFERRED": Phase.RUNNING,
    "FINALIZING": Phase.RUNNING,
    "CANCELLING": Phase.RUNNING,
    "SUCCESS": Phase.SUCCEEDED,
    "FAILED": Phase.FAILED,
    "CANCELED": Phase.CANCELED,
}
CASES = {
    "weaviate-export": ("ExportStatusResponse", EXPORT_PHASES),
    "weaviate-backup": ("BackupCreateStatusResponse", BACKUP_PHASES),
    "weaviate-restore": ("BackupRestoreStatusResponse", BACKUP_PHASES),
}
ALL_SOURCES = (
    "weaviate-export",
    "weaviate-backup",
    "weaviate-restore",
    "zilliz-import-v1",
    "zilliz-import-v2",
    "milvus-import",
    "pinecone-import",
)

# --- JSON schema -> hypothesis ------------------------------------------------------------------

_INT_BOUNDS = {"int64": (-(2**63), 2**63 - 1), "int32": (-(2**31), 2**31 - 1)}


def _go_datetime(moment: datetime, offset_minutes: int) -> str:
    """strfmt.DateTime's RFC3339 with milliseconds; offsets other than Z are valid date-time too."""
    zone = UTC if offset_minutes == 0 else timezone(timedelta(minutes=offset_minutes))
    local = moment.replace(tzinfo=UTC).astimezone(zone) if offset_minutes else moment
    text = local.strftime("%Y-%m-%dT%H:%M:%S.") + f"{local.microsecond // 1000:03d}"
    if offset_minutes == 0:
        return text + "Z"
    sign = "+" if offset_minutes > 0 else "-"
    hours, minutes = divmod(abs(offset_minutes), 60)
    return f"{text}{sign}{hours:02d}:{minutes:02d}"


DATE_TIMES = st.one_of(
    st.just("0001-01-01T00:00:00.000Z"),  # Go's zero time: "not completed yet"
    st.builds(
        _go_datetime,
        st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(9999, 12, 30)),
        st.sampled_from([0, 0, 0, 60, -300, 330, 14 * 60, -12 * 60]),
    ),
)


def from_schema(schema: dict[str, Any], always: frozenset[str] = frozenset()) -> st.SearchStrategy[Any]:
    """A strategy for values valid against `schema` (Swagger 2.0 subset used by the Weaviate definitions)."""
    if "$ref" in schema:
        name = schema["$ref"].removeprefix("#/definitions/")
        return from_schema(DEFINITIONS[name], frozenset(ALWAYS_SENT.get(name, ())))
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kind = schema.get("type")
    if kind is None and ("properties" in schema or "additionalProperties" in schema):
        kind = "object"  # the backup status definitions omit `type: object`
    if kind == "object":
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        if properties and extra is None:
            required = {key: from_schema(value) for key, value in properties.items() if key in always}
            optional = {key: from_schema(value) for key, value in properties.items() if key not in always}
            return st.fixed_dictionaries(required, optional=optional)
        if isinstance(extra, dict) and not properties:
            return st.dictionaries(st.text(min_size=1, max_size=12), from_schema(extra), max_size=4)
    elif kind == "array" and isinstance(schema.get("items"), dict):
        return st.lists(from_schema(schema["items"]), max_size=4)
    elif kind == "string":
        if schema.get("format") == "date-time":
            return DATE_TIMES
        if "format" not in schema:
            return st.text(max_size=24)
    elif kind == "integer":
        low, high = _INT_BOUNDS[schema.get("format", "int32")]
        return st.integers(min_value=low, max_value=high)
    elif kind == "number":
        return st.floats(allow_nan=False, allow_infinity=False)
    raise NotImplementedError(f"schema construct outside the supported subset: {schema}")


def definition(name: str) -> st.SearchStrategy[Any]:
    return from_schema({"$ref": f"#/definitions/{name}"}) if DEFINITIONS else st.nothing()


# --- checks --------------------------------------------------------------------------------------


def _is_iso_utc(value: str | None) -> bool:
    if value is None:
        return True
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value.endswith("Z") and parsed.utcoffset() == timedelta(0)


def check_snapshot(source: Source, snapshot: Snapshot) -> None:
    """What every snapshot must satisfy, whatever the body: publishable and renderable."""
    assert snapshot.progress is None or 0.0 <= snapshot.progress <= 100.0
    assert _is_iso_utc(snapshot.started_at)
    assert _is_iso_utc(snapshot.completed_at)
    if not snapshot.status_known:
        assert snapshot.phase is Phase.RUNNING
    wire = snapshot.to_wire()
    assert json.loads(json.dumps(wire, allow_nan=False)) == wire
    job = get_source(source.name)
    assert job is source
    for fact in source.facts(_spec(source.name), snapshot):
        assert isinstance(fact.label, str) and isinstance(fact.value, str)


def _spec(name: str) -> Any:
    from jobwatch.domain.model import JobSpec

    return JobSpec(
        source=name,
        endpoint="https://db.example.com",
        job_id="j",
        backend="s3",
        cluster_id="c",
        options={"dbName": "d"},
    )


def parse_or_poll_error(source: Source, response: HttpResponse) -> None:
    """The fuzz property: a snapshot that passes `check_snapshot`, or a PollError, never anything else."""
    try:
        snapshot = source.parse(response)
    except PollError as error:
        assert str(error)
        return
    check_snapshot(source, snapshot)


# --- schema-generated bodies ---------------------------------------------------------------------


@pytest.mark.usefixtures("reference_dir")
@pytest.mark.parametrize("name", sorted(CASES))
def test_schema_enum_is_fully_mapped(name: str) -> None:
    """A status added to the spec must be classified here (and in the source) before it ships."""
    definition_name, phases = CASES[name]
    assert set(DEFINITIONS[definition_name]["properties"]["status"]["enum"]) == set(phases)


@pytest.mark.usefixtures("reference_dir")
def test_shard_progress_enum_is_known() -> None:
    assert set(DEFINITIONS["ShardProgress"]["properties"]["status"]["enum"]) == {
        "TRANSFERRING",
        "SUCCESS",
        "FAILED",
        "SKIPPED",
    }


@BOUNDED
@given(body=definition("ExportStatusResponse"))
def test_generated_export_status_parses(body: dict[str, Any]) -> None:
    source = get_source("weaviate-export")
    snapshot = source.parse(HttpResponse(200, json.dumps(body).encode()))
    assert (snapshot.phase, snapshot.status, snapshot.status_known) == (
        EXPORT_PHASES[body["status"]],
        body["status"],
        True,
    )
    check_snapshot(source, snapshot)
    shard_map = body.get("shardStatus")
    if shard_map is not None:
        total = sum(len(shards) for shards in shard_map.values())
        assert snapshot.details["shards"]["total"] == total
        if snapshot.phase is Phase.RUNNING and total:
            assert snapshot.progress is not None
    if body.get("status") == "SUCCESS":
        assert snapshot.progress == 100.0


@BOUNDED
@given(shard=definition("ShardProgress"), status=st.sampled_from(sorted(EXPORT_PHASES)))
def test_generated_shard_progress_is_counted(shard: dict[str, Any], status: str) -> None:
    body = {"status": status, "classes": ["A"], "shardStatus": {"A": {"s1": shard}}}
    snapshot = get_source("weaviate-export").parse(HttpResponse(200, json.dumps(body).encode()))
    shards = snapshot.details["shards"]
    counted = sum(shards[key] for key in ("transferring", "succeeded", "failed", "skipped"))
    assert counted + shards.get("unknown", 0) == shards["total"] == 1
    assert snapshot.details["objectsExported"] == shard.get("objectsExported", 0)


@BOUNDED
@given(body=definition("BackupCreateStatusResponse"))
def test_generated_backup_status_parses(body: dict[str, Any]) -> None:
    source = get_source("weaviate-backup")
    snapshot = source.parse(HttpResponse(200, json.dumps(body).encode()))
    assert snapshot.phase is BACKUP_PHASES[body["status"]]
    assert snapshot.status_known
    check_snapshot(source, snapshot)
    assert snapshot.details.get("sizeGiB") == body.get("size")


@BOUNDED
@given(body=definition("BackupRestoreStatusResponse"))
def test_generated_restore_status_parses(body: dict[str, Any]) -> None:
    source = get_source("weaviate-restore")
    snapshot = source.parse(HttpResponse(200, json.dumps(body).encode()))
    assert snapshot.phase is BACKUP_PHASES[body["status"]]
    assert (snapshot.started_at, snapshot.completed_at) == (None, None)
    assert snapshot.details["timestampsObserved"] is True
    check_snapshot(source, snapshot)


def test_translator_refuses_unknown_constructs() -> None:
    unsupported: list[dict[str, Any]] = [
        {"type": "boolean"},
        {"oneOf": []},
        {"type": "string", "format": "uuid"},
    ]
    for schema in unsupported:
        with pytest.raises(NotImplementedError):
            from_schema(schema)


# --- fuzzing: any bytes, any JSON, any mutation of a real body ----------------------------------

STATUSES = st.sampled_from([200, 201, 204, 301, 400, 401, 403, 404, 409, 422, 429, 500, 502, 503])
HEADERS = st.fixed_dictionaries(
    {}, optional={"retry-after": st.text(max_size=6), "content-type": st.sampled_from(["text/html", ""])}
)
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()  # NaN and infinities included: Python's json reads them back
    | st.text(max_size=12)
    | st.sampled_from(["Unknown type", "", "0001-01-01T00:00:00.000Z", "Completed", "SUCCESS", "Failed"]),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=24,
)


@SHALLOW_FUZZ
@pytest.mark.parametrize("name", ALL_SOURCES)
@given(body=st.binary(max_size=400), status=STATUSES, headers=HEADERS)
def test_arbitrary_bytes_only_raise_poll_error(
    name: str, body: bytes, status: int, headers: dict[str, str]
) -> None:
    parse_or_poll_error(get_source(name), HttpResponse(status, body, headers))


@SHALLOW_FUZZ
@pytest.mark.parametrize("name", ALL_SOURCES)
@given(value=JSON_VALUES, status=STATUSES)
def test_arbitrary_json_only_raises_poll_error(name: str, value: Any, status: int) -> None:
    parse_or_poll_error(get_source(name), HttpResponse(status, json.dumps(value).encode()))


def _parses(source: Source, body: Any) -> bool:
    """Seed only from real status bodies: mutating them reaches the deep readers."""
    try:
        source.parse(HttpResponse(200, json.dumps(body).encode()))
    except PollError:
        return False
    return True


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place inside a body (keys and indexes), so deep fields get mutated as often as top ones."""
    children: list[tuple[Any, Any]] = []
    if isinstance(node, dict):
        children = list(node.items())
    elif isinstance(node, list):
        children = list(enumerate(node))
    paths = []
    for key, child in children:
        paths.append((*prefix, key))
        paths += _paths(child, (*prefix, key))
    return paths


def _mutate(data: st.DataObject, body: Any) -> Any:
    """Replace or delete one to three random places of a real body."""
    root = copy.deepcopy(body)
    for _ in range(data.draw(st.integers(min_value=1, max_value=3))):
        paths = _paths(root)
        if not paths:
            break
        path = data.draw(st.sampled_from(paths))
        parent = root
        for key in path[:-1]:
            parent = parent[key]
        if data.draw(st.integers(min_value=0, max_value=3)) == 0:
            del parent[path[-1]]
        else:
            parent[path[-1]] = data.draw(JSON_VALUES)
    return root


@FUZZ
@pytest.mark.parametrize("name", ALL_SOURCES)
@given(data=st.data())
def test_mutated_real_bodies_only_raise_poll_error(
    name: str, data: st.DataObject, seed_bodies: dict[str, list[Any]]
) -> None:
    source = get_source(name)
    base = data.draw(st.sampled_from([body for body in seed_bodies[name] if _parses(source, body)]))
    mutated = _mutate(data, base)
    parse_or_poll_error(source, HttpResponse(200, json.dumps(mutated).encode()))
