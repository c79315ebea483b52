"""The upstream simulator serves the reference shapes, steps scripts, injects faults and is scriptable.

Body shapes are pinned twice: as literal key sets here (so the tests run anywhere) and, when
shared/reference is present, those key sets are checked against the recorded samples themselves.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from jobwatch_devkit.http11 import HttpApp, Request, Response
from jobwatch_devkit.processes import moto_process, simulator_process
from jobwatch_devkit.reference import reference_dir
from jobwatch_devkit.simulator import (
    ECHO_HEADER,
    JobState,
    Step,
    UpstreamSimulator,
    fault_api_error,
    fault_array,
    fault_deep,
    fault_disconnect,
    fault_drift,
    fault_echo,
    fault_endless,
    fault_hang,
    fault_html,
    fault_http,
    fault_malformed,
    fault_oversized,
    fault_rate_limit,
    fault_reset,
    fault_slow,
    hold,
    hostile_bodies,
    state,
    steps_from_json,
    steps_to_json,
    unknown_status,
)

REFERENCE = reference_dir()
ZERO_TIME = "0001-01-01T00:00:00.000Z"


@pytest.fixture(scope="module")
def server() -> Iterator[UpstreamSimulator]:
    sim = UpstreamSimulator()
    sim.start()
    yield sim
    sim.stop()


@pytest.fixture
def sim(server: UpstreamSimulator) -> UpstreamSimulator:
    server.reset()
    return server


@pytest.fixture
def client(sim: UpstreamSimulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sim.base_url, timeout=5.0) as c:
        yield c


def _keys(obj: Any) -> set[str]:
    assert isinstance(obj, dict), obj
    return set(obj)


# -- reference key sets --------------------------------------------------------------------------------

EXPORT_RUNNING = {"backend", "classes", "completedAt", "id", "path", "shardStatus", "startedAt", "status"}
EXPORT_SUCCESS = EXPORT_RUNNING | {"tookInMs"}
EXPORT_FAILED = EXPORT_SUCCESS | {"error"}
EXPORT_CANCELED = {
    "backend",
    "classes",
    "completedAt",
    "error",
    "id",
    "path",
    "startedAt",
    "status",
    "tookInMs",
}
BACKUP_STARTED = {"backend", "completedAt", "id", "path", "startedAt", "status"}
BACKUP_SUCCESS = BACKUP_STARTED | {"size"}
BACKUP_FAILED = BACKUP_STARTED | {"error"}
RESTORE_RUNNING = {"backend", "id", "path", "status"}
RESTORE_CANCELED = RESTORE_RUNNING | {"error"}
BACKUP_LIST_RUNNING = {"classes", "completedAt", "id", "startedAt", "status"}
BACKUP_LIST_SUCCESS = BACKUP_LIST_RUNNING | {"size"}
ZV1_DATA = {
    "collectionName",
    "fileName",
    "fileSize",
    "readyPercentage",
    "completeTime",
    "errorMessage",
    "jobId",
    "details",
}
ZV1_DETAIL = {"fileName", "fileSize", "readyPercentage", "completeTime", "errorMessage"}
ZV1_LIST_DATA = {"tasks", "count", "currentPage", "pageSize"}
ZV1_TASK = {"collectionName", "jobId", "state"}
ZV2_DATA = {
    "jobId",
    "collectionName",
    "fileName",
    "fileSize",
    "state",
    "progress",
    "completeTime",
    "reason",
    "totalRows",
    "details",
}
ZV2_DETAIL = {"fileName", "fileSize", "state", "progress", "completeTime", "reason"}
ZV2_LIST_DATA = {"count", "currentPage", "pageSize", "records"}
ZV2_RECORD = {"collectionName", "jobId", "state"}
MILVUS_DATA = {
    "collectionName",
    "completeTime",
    "details",
    "fileSize",
    "importedRows",
    "jobId",
    "progress",
    "state",
    "totalRows",
}
MILVUS_DETAIL = {"completeTime", "fileName", "fileSize", "importedRows", "progress", "state", "totalRows"}
MILVUS_LIST_RECORD = {"collectionName", "jobId", "progress", "state"}
PINECONE_CORE = {"id", "uri", "status", "createdAt", "percentComplete", "recordsImported"}


def _sample(rel: str) -> Any:
    path = REFERENCE / rel
    if not path.exists():
        pytest.skip(f"reference sample {path} not available")
    return json.loads(path.read_text())


def _weaviate_examples() -> dict[str, Any]:
    data: dict[str, Any] = _sample("weaviate/examples.constructed.json")
    return data


def _one(section: dict[str, Any], prefix: str) -> Any:
    matches = [v for k, v in section.items() if k.startswith(prefix)]
    assert len(matches) == 1, (prefix, list(section))
    return matches[0]


class TestReferenceKeySetsMatchSamples:
    """The literal key sets above are the samples' key sets (guards against drifting from the reference)."""

    def test_weaviate(self) -> None:
        ex = _weaviate_examples()
        export, backup = ex["export"], ex["backup"]
        assert _keys(_one(export, "GET /v1/export/s3/{id} 200 TRANSFERRING")) == EXPORT_RUNNING
        assert _keys(export["GET /v1/export/s3/{id} 200 SUCCESS"]) == EXPORT_SUCCESS
        assert _keys(_one(export, "GET /v1/export/s3/{id} 200 FAILED (a shard")) == EXPORT_FAILED
        assert _keys(export["GET /v1/export/s3/{id} 200 CANCELED"]) == EXPORT_CANCELED
        assert _keys(_one(backup, "GET /v1/backups/s3/{id} 200 create status, in progress")) == BACKUP_STARTED
        assert _keys(backup["GET /v1/backups/s3/{id} 200 create status SUCCESS"]) == BACKUP_SUCCESS
        assert _keys(backup["GET /v1/backups/s3/{id} 200 create status FAILED"]) == BACKUP_FAILED
        assert _keys(_one(backup, "GET /v1/backups/s3/{id}/restore 200 restore status TRANSFERRING")) == (
            RESTORE_RUNNING
        )
        assert _keys(_one(backup, "GET /v1/backups/s3/{id}/restore 200 restore status CANCELED")) == (
            RESTORE_CANCELED
        )
        listing = _one(backup, "GET /v1/backups/s3?order=desc")
        assert _keys(listing[0]) == BACKUP_LIST_RUNNING
        assert _keys(listing[1]) == BACKUP_LIST_SUCCESS

    def test_zilliz_and_milvus(self) -> None:
        v1 = _sample("milvus/samples/zilliz-cloud-v1/get-progress.running.json")["body"]
        assert _keys(v1["data"]) == ZV1_DATA
        assert _keys(v1["data"]["details"][0]) == ZV1_DETAIL
        v1_list = _sample("milvus/samples/zilliz-cloud-v1/list.json")["body"]["data"]
        assert _keys(v1_list) == ZV1_LIST_DATA
        assert _keys(v1_list["tasks"][0]) == ZV1_TASK
        v2 = _sample("milvus/samples/zilliz-cloud-v2/get-progress.completed.json")["body"]["data"]
        assert _keys(v2) == ZV2_DATA
        assert _keys(v2["details"][0]) == ZV2_DETAIL
        v2_list = _sample("milvus/samples/zilliz-cloud-v2/list.json")["body"]["data"]
        assert _keys(v2_list) == ZV2_LIST_DATA
        assert _keys(v2_list["records"][0]) == ZV2_RECORD
        milvus = _sample("milvus/samples/milvus-v2/describe.completed.json")["body"]["data"]
        assert _keys(milvus) == MILVUS_DATA
        assert _keys(milvus["details"][0]) == MILVUS_DETAIL
        pending = _sample("milvus/samples/milvus-v2/describe.pending.synthesized.json")["body"]["data"]
        assert _keys(pending) == MILVUS_DATA
        failed = _sample("milvus/samples/milvus-v2/describe.failed.synthesized.json")["body"]["data"]
        assert _keys(failed) == MILVUS_DATA | {"reason"}
        listing = _sample("milvus/samples/milvus-v2/list.pending.json")["body"]["data"]["records"][0]
        assert _keys(listing) == MILVUS_LIST_RECORD
        pinecone = _sample("milvus/samples/pinecone/describe-import.json")["body"]
        assert _keys(pinecone) >= PINECONE_CORE | {"finishedAt", "error"}


# -- Weaviate --------------------------------------------------------------------------------------------


class TestWeaviateExport:
    def test_lifecycle_shapes(self, sim: UpstreamSimulator, client: httpx.Client) -> None:
        sim.add_job(
            "weaviate-export",
            "nightly-1",
            [state("TRANSFERRING", objects=120_000), state("SUCCESS", objects=498_213)],
            backend="s3",
            collection="Article",
        )
        running = client.get("/v1/export/s3/nightly-1")
        assert running.status_code == 200
        assert running.headers["content-type"] == "application/json"
        body = running.json()
        assert _keys(body) == EXPORT_RUNNING
        assert body["completedAt"] == ZERO_TIME  # never omitted, Go zero time while running
        assert "tookInMs" not in body
        assert body["classes"] == ["Article"]
        assert body["path"] == "s3://jobwatch-sim/exports/nightly-1"
        shard = next(iter(body["shardStatus"]["Article"].values()))
        assert shard == {"objectsExported": 120_000, "status": "TRANSFERRING"}
        assert body["startedAt"].endswith("Z") and len(body["startedAt"]) == len(ZERO_TIME)

        done = client.get("/v1/export/s3/nightly-1").json()
        assert _keys(done) == EXPORT_SUCCESS
        assert done["status"] == "SUCCESS"
        assert done["completedAt"] != ZERO_TIME
        assert done["tookInMs"] > 0
        again = client.get("/v1/export/s3/nightly-1").json()
        assert again == done  # the last step repeats, completedAt stays stable

    def test_zero_objects_are_omitted_and_started_has_no_shards(
        self, sim: UpstreamSimulator, client: httpx.Client
    ) -> None:
        shards = {"Product": {"p0QwE8rTyU6i": {"objectsExported": 0, "status": "TRANSFERRING"}}}
        sim.add_job("weaviate-export", "e", [state("STARTED"), state("TRANSFERRING", shards=shards)])
        started = client.get("/v1/export/filesystem/e").json()
        assert "shardStatus" not in started
        assert started["status"] == "STARTED"
        transferring = client.get("/v1/export/filesystem/e").json()
        assert transferring["shardStatus"] == {"Product": {"p0QwE8rTyU6i": {"status": "TRANSFERRING"}}}

    def test_failed_and_canceled(self, sim: UpstreamSimulator, client: httpx.Client) -> None:
        sim.add_job("weaviate-export", "f", [state("FAILED", error="node weaviate-1 failed", objects=40_000)])
        failed = client.get("/v1/export/s3/f").json()
        assert _keys(failed) == EXPORT_FAILED
        shard = next(iter(failed["shardStatus"]["Article"].values()))
        assert _keys(shard) == {"error", "objectsExported", "status"}
        sim.add_job("weaviate-export", "c", [state("CANCELED")])
        canceled = client.get("/v1/export/s3/c").json()
        assert _keys(canceled) == EXPORT_CANCELED
        assert canceled["error"] == "export was canceled"  # a CANCELED export carries an error

    def test_unknown_export_and_backend_mismatch(self, sim: UpstreamSimulator, client: httpx.Client) -> None:
        sim.add_job("weaviate-export", "x", [state("TRANSFERRING")], backend="s3")
        missing = client.get("/v1/export/s3/nope")
        assert missing.status_code == 404
        assert missing.json() == {"error": [{"message": "export not found"}]}
        assert client.get("/v1/export/gcs/x").status_code == 404
        wrong_method = client.delete("/v1/export/s3/x")
        assert wrong_method.status_code == 405


class TestWeaviateBackups:
    def test_backup_create_status(self, sim: UpstreamSimulator, client: httpx.Client) -> None:
        sim.add_job(
            "weaviate-backup",
            "b",
            [state("STARTED"), state("FAILED", error="upload: connection reset"), state("SUCCESS")],
            backend="s3",
        )
        started = client.get("/v1/backups/s3/b", params={"bucket": "bk", "path": "p"}).json()
        assert _keys(started) == BACKUP_STARTED
        assert started["completedAt"] == ZERO_TIME
        assert _keys(client.get("/v1/backups/s3/b").json()) == BACKUP_FAILED
        success = client.get("/v1/backups/s3/b").json()
        assert _keys(success) == BACKUP_SUCCESS
        assert success["size"] > 0

    def test_restore_status(self, sim: UpstreamSimulator, client: httpx.Client) -> None:
        sim.add_job("weaviate-restore", "b", [state("TRANSFERRING"), state("FINALIZING"), state("CANCELED")])
        assert _keys(client.get("/v1/backups/s3/b/restore").json()) == RESTORE_RUNNING
        assert client.get("/v1/backups/s3/b/restore").json()["status"] == "FINALIZING"
        canceled = client.get("/v1/backups/s3/b/restore").json()
        assert _keys(canceled) == RESTORE_CANCELED
        assert canceled["error"] == "restore canceled by user"
        assert client.get("/v1/backups/s3/other/restore").status_code == 404
        # create status of the same id is a different job: not registered here
        assert client.get("/v1/backups/s3/b").status_code == 404

    def test_list(self, sim: UpstreamSimulator, client: httpx.Client) -> None:
        sim.add_job("weaviate-backup", "old", [state("SUCCESS")], backend="s3")
        sim.add_job("weaviate-backup", "new", [state("STARTED")], backend="s3")
        sim.add_job("weaviate-backup", "elsewhere", [state("STARTED")], backend="gcs")
        listing = client.get("/v1/backups/s3").json()
        assert isinstance(listing, list)
        by_id = {item["id"]: item for item in listing}
        assert set(by_id) == {"old", "new"}
        assert _keys(by_id["new"]) == BACKUP_LIST_RUNNING
        assert _keys(by_id["old"]) == BACKUP_LIST_SUCCESS
        assert sim.request_count("old") == 0  # listing does not advance or count as a status poll


# -- Zilliz / Milvus -------------------------------------------------------------------------------------


class TestZillizV1:
    def test_progress_fraction_and_nulls(self, sim: UpstreamSimulator, client: httpx.Client) -> None:
        sim.add_job(
            "zilliz-import-v1",
            "job-1",
            [state(ready=0), state(ready=0.5), state(ready=1)],
            cluster_id="in01-abc",
        )
        params = {"jobId": "job-1", "clusterId": "in01-abc"}
        first = client.get("/v1/vector/collections/import/get", params=params).json()
        assert first["code"] == 200
        data = first["data"]
        assert _keys(data) == ZV1_DATA
        assert _keys(data["details"][0]) == ZV1_DETAIL
        assert data["readyPercentage"] == 0 and isinstance(data["readyPercentage"], int)
        assert data["completeTime"] is None and data["errorMessage"] is None
        half = client.get("/v1/vector/collections/import/get", params=params).json()["data"]
        assert half["readyPercentage"] == 0.5
        done = client.get("/v1/vector/collections/import/get", params=params).json()["data"]
        assert done["readyPercentage"] == 1 and isinstance(done["readyPercentage"], int)
        assert isinstance(done["completeTime"], str) and done["completeTime"].endswith("Z")

    def test_failure_and_unknown(self, sim: UpstreamSimulator, client: httpx.Client) -> None:
        sim.add_job("zilliz-import-v1", "j", [state(ready=0.3, error_message="bad parquet")], cluster_id="c1")
        data = client.get(
            "/v1/vector/collections/import/get", params={"jobId": "j", "clusterId": "c1"}
        ).json()
        assert data["data"]["errorMessage"] == "bad parquet"
        unknown = client.get("/v1/vector/collections/import/get", params={"jobId": "zz", "clusterId": "c1"})
        assert unknown.status_code == 200
        assert unknown.json()["code"] not in (0, 200) and "message" in unknown.json()
        other_cluster = client.get(
            "/v1/vector/collections/import/get", params={"jobId": "j", "clusterId": "c2"}
        )
        assert other_cluster.json()["code"] != 200
        missing = client.get("/v1/vector/collections/import/get", params={"jobId": "j"})
        assert missing.status_code == 200 and missing.json()["code"] != 200

    def test_list(self, sim: UpstreamSimulator, client: httpx.Client) -> None:
        sim.add_job("zilliz-import-v1", "a", [state(ready=0.2)], cluster_id="c1")
        sim.add_job("zilliz-import-v1", "b", [state(ready=1)], cluster_id="c1")
        sim.add_job("zilliz-import-v1", "c", [state(ready=0, error="boom")], cluster_id="c1")
        sim.add_job("zilliz-import-v1", "d", [state(ready=0)], cluster_id="c2")
        body = client.get("/v1/vector/collections/import/list", params={"clusterId": "c1"}).json()
        assert body["code"] == 200
        assert _keys(body["data"]) == ZV1_LIST_DATA
        states = {t["jobId"]: t["state"] for t in body["data"]["tasks"]}
        assert states == {"a": "ImportRunning", "b": "ImportCompleted", "c": "ImportFailed"}
        assert all(_keys(t) == ZV1_TASK for t in body["data"]["tasks"])
        page = client.get(
            "/v1/vector/collections/import/list",
            params={"clusterId": "c1", "pageSize": "2", "currentPage": "2"},
        ).json()["data"]
        assert page["count"] == 3 and len(page["tasks"]) == 1 and page["currentPage"] == 2


class TestZillizV2:
    def test_get_progress(self, sim: UpstreamSimulator, client: httpx.Client) -> None:
        sim.add_job(
            "zilliz-import-v2",
            "job-2",
            [state("Importing", progress=40), state("Completed")],
            cluster_id="in01-x",
        )
        body = {"clusterId": "in01-x", "jobId": "job-2"}
        running = client.post("/v2/vectordb/jobs/import/getProgress", json=body).json()
        assert running["code"] == 0
        assert _keys(running["data"]) == ZV2_DATA
        assert _keys(running["data"]["details"][0]) == ZV2_DETAIL
        assert running["data"]["progress"] == 40 and running["data"]["reason"] == ""
        done = client.post("/v2/vectordb/jobs/import/describe", json=body).json()["data"]
        assert done["state"] == "Completed" and done["progress"] == 100 and done["completeTime"]

    def test_unknown_job_is_http_200_with_code(self, sim: UpstreamSimulator, client: httpx.Client) -> None:
        r = client.post("/v2/vectordb/jobs/import/getProgress", json={"clusterId": "c", "jobId": "nope"})
        assert r.status_code == 200
        assert r.json()["code"] != 0 and r.json()["message"]

    def test_list(self, sim: UpstreamSimulator, client: httpx.Client) -> None:
        sim.add_job("zilliz-import-v2", "a", [state("Importing")], cluster_id="c1")
        sim.add_job("zilliz-import-v2", "b", [state("Completed")], cluster_id="c1")
        body = client.post("/v2/vectordb/jobs/import/list", json={"clusterId": "c1"}).json()
        assert body["code"] == 0
        assert _keys(body["data"]) == ZV2_LIST_DATA
        records = {r["jobId"]: r for r in body["data"]["records"]}
        assert all(_keys(r) == ZV2_RECORD for r in records.values())
        assert records["a"]["state"] == "InProgress"  # the list enum says InProgress, getProgress Importing
        assert records["b"]["state"] == "Completed"


class TestMilvus:
    def test_describe_lifecycle(self, sim: UpstreamSimulator, client: httpx.Client) -> None:
        sim.add_job(
            "milvus-import",
            "451910421390678353",
            [
                state("Pending"),
                state("Importing", progress=80, files=["5.parquet"]),
                state("Completed"),
                state("Failed", error="import timeout"),
            ],
        )
        url = "/v2/vectordb/jobs/import/describe"
        body = {"jobId": "451910421390678353"}
        pending = client.post(url, json=body).json()
        assert pending["code"] == 0
        assert _keys(pending["data"]) == MILVUS_DATA
        assert pending["data"]["details"] == [] and pending["data"]["completeTime"] == ""
        assert "reason" not in pending["data"]  # Milvus omits an empty reason
        importing = client.post(url, json=body).json()["data"]
        assert importing["progress"] == 80 and importing["state"] == "Importing"
        assert importing["details"][0]["fileName"] == "[5.parquet]"
        assert importing["details"][0]["state"] == "InProgress"
        assert _keys(importing["details"][0]) == MILVUS_DETAIL
        completed = client.post(url, json=body).json()["data"]
        assert _keys(completed) == MILVUS_DATA
        assert completed["progress"] == 100 and completed["completeTime"].endswith("Z")
        failed = client.post("/v2/vectordb/jobs/import/get_progress", json=body).json()["data"]
        assert _keys(failed) == MILVUS_DATA | {"reason"}
        assert (
            failed["progress"] == 0 and failed["importedRows"] == 0 and failed["reason"] == "import timeout"
        )

    def test_errors(self, sim: UpstreamSimulator, client: httpx.Client) -> None:
        url = "/v2/vectordb/jobs/import/describe"
        unknown = client.post(url, json={"jobId": "42"})
        assert unknown.status_code == 200
        assert unknown.json() == {
            "code": 2100,
            "message": "import job does not exist, jobID=42: importing data failed",
        }
        numeric = client.post(url, json={"jobId": 42})
        assert numeric.status_code == 200 and numeric.json()["code"] == 1801
        missing = client.post(url, json={})
        assert missing.json()["code"] == 1802
        garbage = client.post(url, content=b"{not json", headers={"content-type": "application/json"})
        assert garbage.json()["code"] == 1801
        assert client.get(url).status_code == 404
        assert client.post("/v1/vector/collections/import", json={}).status_code == 404

    def test_list(self, sim: UpstreamSimulator, client: httpx.Client) -> None:
        sim.add_job("milvus-import", "1", [state("Pending")], collection="price")
        sim.add_job("milvus-import", "2", [state("Failed", error="x")], collection="other")
        body = client.post("/v2/vectordb/jobs/import/list", json={}).json()
        records = {r["jobId"]: r for r in body["data"]["records"]}
        assert _keys(records["1"]) == MILVUS_LIST_RECORD
        assert _keys(records["2"]) == MILVUS_LIST_RECORD | {"reason"}
        only = client.post("/v2/vectordb/jobs/import/list", json={"collectionName": "price"}).json()
        assert [r["jobId"] for r in only["data"]["records"]] == ["1"]


class TestPinecone:
    def test_describe(self, sim: UpstreamSimulator, client: httpx.Client) -> None:
        sim.add_job(
            "pinecone-import",
            "101",
            [state("InProgress", progress=42.2, rows=1_000_000), state("Failed", error="bad file")],
        )
        running = client.get("/bulk/imports/101").json()
        assert _keys(running) == PINECONE_CORE
        assert running["percentComplete"] == 42.2 and running["recordsImported"] == 1_000_000
        failed = client.get("/bulk/imports/101").json()
        assert _keys(failed) == PINECONE_CORE | {"finishedAt", "error"}
        missing = client.get("/bulk/imports/999")
        assert missing.status_code == 404 and "message" in missing.json()

    def test_list(self, sim: UpstreamSimulator, client: httpx.Client) -> None:
        sim.add_static_jobs("pinecone-import", [str(i) for i in range(5)])
        first = client.get("/bulk/imports", params={"limit": 3}).json()
        assert len(first["data"]) == 3 and first["pagination"]["next"]
        rest = client.get(
            "/bulk/imports", params={"limit": 3, "paginationToken": first["pagination"]["next"]}
        )
        assert len(rest.json()["data"]) == 2 and "pagination" not in rest.json()


# -- auth --------------------------------------------------------------------------------------------------


class TestAuth:
    def test_weaviate(self, sim: UpstreamSimulator, client: httpx.Client) -> None:
        sim.add_job("weaviate-export", "e", [state("TRANSFERRING")], api_key="secret")
        anonymous = client.get("/v1/export/s3/e")
        assert anonymous.status_code == 401
        assert "content-type" not in anonymous.headers  # written by hand, no Content-Type
        assert json.loads(anonymous.text)["code"] == 401
        wrong = client.get("/v1/export/s3/e", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        assert wrong.json() == {"code": 401, "message": "unauthorized: invalid api key"}
        assert sim.request_count("e") == 2
        right = client.get("/v1/export/s3/e", headers={"Authorization": "Bearer secret"})
        assert right.status_code == 200 and right.json()["status"] == "TRANSFERRING"

    @pytest.mark.parametrize(
        ("source", "call", "status", "code"),
        [
            ("zilliz-import-v1", "v1", 401, 80001),
            ("zilliz-import-v2", "v2", 401, 21119),
            ("milvus-import", "milvus", 401, 1800),
        ],
    )
    def test_zilliz_milvus(
        self, sim: UpstreamSimulator, client: httpx.Client, source: str, call: str, status: int, code: int
    ) -> None:
        sim.add_job(source, "7", [state("Importing", ready=0.1)], cluster_id="c", api_key="k")

        def poll(headers: dict[str, str]) -> httpx.Response:
            if call == "v1":
                params = {"jobId": "7", "clusterId": "c"}
                return client.get("/v1/vector/collections/import/get", params=params, headers=headers)
            body = {"jobId": "7", "clusterId": "c"} if call == "v2" else {"jobId": "7"}
            return client.post("/v2/vectordb/jobs/import/describe", json=body, headers=headers)

        denied = poll({})
        assert denied.status_code == status and denied.json()["code"] == code
        assert poll({"Authorization": "Bearer bad"}).status_code == 401
        ok = poll({"Authorization": "Bearer k"})
        assert ok.status_code == 200 and ok.json()["code"] in (0, 200)

    def test_pinecone_uses_api_key_header(self, sim: UpstreamSimulator, client: httpx.Client) -> None:
        sim.add_job("pinecone-import", "p", [state("InProgress")], api_key="pk")
        assert client.get("/bulk/imports/p", headers={"Authorization": "Bearer pk"}).status_code == 401
        assert client.get("/bulk/imports/p", headers={"Api-Key": "pk"}).status_code == 200

    def test_lists_need_a_key_when_jobs_have_one(self, sim: UpstreamSimulator, client: httpx.Client) -> None:
        sim.add_job("milvus-import", "1", [state("Importing")], api_key="k")
        assert client.post("/v2/vectordb/jobs/import/list", json={}).status_code == 401
        ok = client.post("/v2/vectordb/jobs/import/list", json={}, headers={"Authorization": "Bearer k"})
        assert [r["jobId"] for r in ok.json()["data"]["records"]] == ["1"]


def test_auth_bodies_match_reference(sim: UpstreamSimulator, client: httpx.Client) -> None:
    ex = _weaviate_examples()["export"]["errors"]
    sim.add_job("weaviate-export", "e", [state("TRANSFERRING")], api_key="k")
    assert (
        client.get("/v1/export/s3/e", headers={"Authorization": "Bearer x"}).json()
        == (ex["401 bad API key (go-openapi shape)"])
    )
    assert client.get("/v1/export/s3/missing").json() == ex["GET status 404"]
    expectations = {
        "zilliz-import-v1": "milvus/samples/zilliz-cloud-v1/error.invalid-token.recorded-401.json",
        "zilliz-import-v2": "milvus/samples/zilliz-cloud-v2/error.apikey-illegal.recorded-401.json",
        "milvus-import": "milvus/samples/milvus-v2/error.unauthenticated.synthesized.json",
    }
    for source, rel in expectations.items():
        sample = _sample(rel)
        sim.add_job(source, "9", [state()], cluster_id="c", api_key="k")
        if source == "zilliz-import-v1":
            r = client.get("/v1/vector/collections/import/get", params={"jobId": "9", "clusterId": "c"})
        else:
            body = {"jobId": "9", "clusterId": "c"} if source == "zilliz-import-v2" else {"jobId": "9"}
            r = client.post("/v2/vectordb/jobs/import/describe", json=body)
        assert (r.status_code, r.json()) == (sample["http_status"], sample["body"]), source


# -- stepping ----------------------------------------------------------------------------------------------


class TestStepping:
    def test_last_step_repeats_and_repeat_counts(self, sim: UpstreamSimulator, client: httpx.Client) -> None:
        sim.add_job(
            "weaviate-export", "s", [state("STARTED"), state("TRANSFERRING", repeat=3), state("SUCCESS")]
        )
        seen = [client.get("/v1/export/s3/s").json()["status"] for _ in range(7)]
        assert seen == [
            "STARTED",
            "TRANSFERRING",
            "TRANSFERRING",
            "TRANSFERRING",
            "SUCCESS",
            "SUCCESS",
            "SUCCESS",
        ]
        assert sim.request_count("s") == 7
        assert sim.request_count("s", source="milvus-import") == 0

    def test_hold_until_advance(self, sim: UpstreamSimulator, client: httpx.Client) -> None:
        sim.add_job("milvus-import", "1", [state("Pending"), hold(state("Importing")), state("Completed")])
        url, body = "/v2/vectordb/jobs/import/describe", {"jobId": "1"}
        seen = [client.post(url, json=body).json()["data"]["state"] for _ in range(4)]
        assert seen == ["Pending", "Importing", "Importing", "Importing"]
        assert sim.advance("1") == 1
        assert client.post(url, json=body).json()["data"]["state"] == "Completed"

    def test_bare_hold_reserves_previous_step(self, sim: UpstreamSimulator, client: httpx.Client) -> None:
        sim.add_job("pinecone-import", "p", [state("InProgress", progress=10), hold(), state("Completed")])
        seen = [client.get("/bulk/imports/p").json()["status"] for _ in range(3)]
        assert seen == ["InProgress", "InProgress", "InProgress"]
        sim.advance("p")
        assert client.get("/bulk/imports/p").json()["status"] == "Completed"
        with pytest.raises(ValueError, match="hold"):
            sim.add_job("pinecone-import", "q", [hold()])

    def test_unknown_status_word_is_served_verbatim(
        self, sim: UpstreamSimulator, client: httpx.Client
    ) -> None:
        sim.add_job("weaviate-export", "u", [unknown_status("REBALANCING")])
        assert client.get("/v1/export/s3/u").json()["status"] == "REBALANCING"

    def test_static_jobs_and_set_all(self, sim: UpstreamSimulator, client: httpx.Client) -> None:
        ids = [f"job-{i}" for i in range(100)]
        assert sim.add_static_jobs("weaviate-export", ids, backend="s3") == 100
        assert client.get("/v1/export/s3/job-42").json()["status"] == "TRANSFERRING"
        assert sim.set_all("weaviate-export", JobState(status="SUCCESS")) == 100
        body = client.get("/v1/export/s3/job-42").json()
        assert body["status"] == "SUCCESS" and body["id"] == "job-42"
        assert client.get("/v1/export/s3/job-7").json()["status"] == "SUCCESS"
        sim.set_all("weaviate-export", fault_http(503))
        assert client.get("/v1/export/s3/job-7").status_code == 503

    def test_extra_and_drop(self, sim: UpstreamSimulator, client: httpx.Client) -> None:
        sim.add_job(
            "weaviate-export",
            "d",
            [state("FAILED", extra={"completedAt": ZERO_TIME}, drop=["tookInMs"])],
        )
        body = client.get("/v1/export/s3/d").json()
        assert body["completedAt"] == ZERO_TIME and "tookInMs" not in body


# -- faults -------------------------------------------------------------------------------------------------


class TestFaults:
    def test_http_errors_use_each_source_shape(self, sim: UpstreamSimulator, client: httpx.Client) -> None:
        sim.add_job("weaviate-export", "w", [fault_http(500), fault_http(422)])
        sim.add_job("zilliz-import-v1", "z", [fault_http(500)])
        sim.add_job("pinecone-import", "p", [fault_http(503)])
        first = client.get("/v1/export/s3/w")
        assert first.status_code == 500 and _keys(first.json()) == {"error"}
        assert first.json()["error"][0]["message"]
        assert client.get("/v1/export/s3/w").status_code == 422
        z = client.get("/v1/vector/collections/import/get", params={"jobId": "z", "clusterId": "c"})
        assert z.status_code == 500 and _keys(z.json()) == {"code", "message"}
        p = client.get("/bulk/imports/p")
        assert p.status_code == 503 and _keys(p.json()) == {"code", "message", "details"}

    def test_html_page_and_custom_body(self, sim: UpstreamSimulator, client: httpx.Client) -> None:
        sim.add_job(
            "weaviate-export", "h", [fault_html(), fault_http(502, "Bad gateway", headers={"X-A": "b"})]
        )
        page = client.get("/v1/export/s3/h")
        assert page.status_code == 503
        assert page.headers["content-type"] == "text/html"
        assert page.text.startswith("<html>")
        custom = client.get("/v1/export/s3/h")
        assert (custom.status_code, custom.text, custom.headers["x-a"]) == (502, "Bad gateway", "b")

    def test_rate_limit(self, sim: UpstreamSimulator, client: httpx.Client) -> None:
        sim.add_job("milvus-import", "1", [fault_rate_limit(2), fault_rate_limit(None), state("Importing")])
        url, body = "/v2/vectordb/jobs/import/describe", {"jobId": "1"}
        first = client.post(url, json=body)
        assert first.status_code == 429 and first.headers["retry-after"] == "2"
        second = client.post(url, json=body)
        assert second.status_code == 429 and "retry-after" not in second.headers
        assert client.post(url, json=body).json()["data"]["state"] == "Importing"

    def test_malformed_array_drift(self, sim: UpstreamSimulator, client: httpx.Client) -> None:
        sim.add_job(
            "zilliz-import-v2",
            "j",
            [state("Importing"), fault_malformed(), fault_array(), fault_drift()],
            cluster_id="c",
        )
        url, body = "/v2/vectordb/jobs/import/getProgress", {"jobId": "j", "clusterId": "c"}
        assert client.post(url, json=body).json()["data"]["state"] == "Importing"
        malformed = client.post(url, json=body)
        assert malformed.status_code == 200 and malformed.headers["content-type"] == "application/json"
        with pytest.raises(ValueError):
            json.loads(malformed.text)
        array = client.post(url, json=body).json()
        assert isinstance(array, list) and array[0]["data"]["state"] == "Importing"
        drift = client.post(url, json=body).json()
        assert drift["code"] == 0 and "state" not in drift["data"] and "progress" in drift["data"]

    def test_drift_default_key_per_source(self, sim: UpstreamSimulator, client: httpx.Client) -> None:
        sim.add_job("zilliz-import-v1", "z", [fault_drift()])
        sim.add_job("weaviate-export", "w", [fault_drift(["classes"])])
        z = client.get("/v1/vector/collections/import/get", params={"jobId": "z", "clusterId": "c"}).json()
        assert "readyPercentage" not in z["data"] and "errorMessage" not in z["data"]
        assert "jobId" in z["data"]
        w = client.get("/v1/export/s3/w").json()
        assert "classes" not in w and "status" in w

    def test_api_error(self, sim: UpstreamSimulator, client: httpx.Client) -> None:
        sim.add_job("zilliz-import-v1", "z", [fault_api_error(80010, "Duplicated ClusterName")])
        r = client.get("/v1/vector/collections/import/get", params={"jobId": "z", "clusterId": "c"})
        assert r.status_code == 200 and r.json() == {"code": 80010, "message": "Duplicated ClusterName"}

    def test_hang_exceeds_read_timeout(self, sim: UpstreamSimulator) -> None:
        sim.add_job("weaviate-export", "slow", [fault_hang(2.0), state("SUCCESS")])
        sim.add_job("weaviate-export", "fast", [state("TRANSFERRING")])
        with httpx.Client(base_url=sim.base_url, timeout=httpx.Timeout(5.0, read=0.2)) as c:
            started = time.monotonic()
            with pytest.raises(httpx.ReadTimeout):
                c.get("/v1/export/s3/slow")
            assert time.monotonic() - started < 1.5
            assert c.get("/v1/export/s3/fast").status_code == 200  # the hang blocks nobody else
            assert c.get("/v1/export/s3/slow").json()["status"] == "SUCCESS"
        assert [r.status for r in sim.requests_log() if r.job_id == "slow"] == [0, 200]

    def test_reset_and_disconnect(self, sim: UpstreamSimulator, client: httpx.Client) -> None:
        sim.add_job("weaviate-export", "r", [fault_reset(), fault_disconnect(), state("SUCCESS")])
        with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
            client.get("/v1/export/s3/r")
        with pytest.raises(httpx.RemoteProtocolError):
            client.get("/v1/export/s3/r")
        assert client.get("/v1/export/s3/r").json()["status"] == "SUCCESS"

    def test_step_delay_and_global_latency(self, sim: UpstreamSimulator, client: httpx.Client) -> None:
        sim.add_job("weaviate-export", "l", [state("STARTED").delayed(150), state("SUCCESS")])
        started = time.monotonic()
        client.get("/v1/export/s3/l")
        assert time.monotonic() - started >= 0.15
        sim.latency_ms = 100
        started = time.monotonic()
        client.get("/v1/export/s3/l")
        assert time.monotonic() - started >= 0.1


# -- hostile faults ------------------------------------------------------------------------------------------

SUCCESS_LURE = JobState(status="SUCCESS", objects=7)
KEY = "sk-sim-0123456789+/="


def _wait_for_no_connections(sim: UpstreamSimulator, timeout: float = 3.0) -> bool:
    """The simulator's connection tasks all ended (a hostile answer stopped once its client left)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not sim._connections:
            return True
        time.sleep(0.05)
    return False


def _head_and_body(sock: socket.socket) -> tuple[bytes, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return head, body


class TestHostileFaults:
    def test_oversized_gzip_is_small_on_the_wire_and_a_valid_status_body_inflated(
        self, sim: UpstreamSimulator
    ) -> None:
        sim.add_job("weaviate-export", "bomb", [fault_oversized(4_000_000, lure=SUCCESS_LURE)])
        with (
            httpx.Client(base_url=sim.base_url, timeout=5.0) as c,
            c.stream("GET", "/v1/export/s3/bomb") as r,
        ):
            body = r.read()
            wire = r.num_bytes_downloaded
        assert r.headers["content-encoding"] == "gzip" and wire < 10_000
        assert len(body) == 4_000_000
        assert json.loads(body)["status"] == "SUCCESS"  # read whole, it would be a state change

    def test_oversized_plain_and_announced(self, sim: UpstreamSimulator) -> None:
        sim.add_job("pinecone-import", "big", [fault_oversized(2_000_000, mode="plain")])
        sim.add_job("weaviate-export", "liar", [fault_oversized(10**12, mode="length", lure=SUCCESS_LURE)])
        with httpx.Client(base_url=sim.base_url, timeout=5.0) as c:
            plain = c.get("/bulk/imports/big")
        assert plain.headers["content-length"] == "2000000" and json.loads(plain.content)["id"] == "big"
        with socket.create_connection(("127.0.0.1", sim.port), timeout=3) as sock:
            sock.sendall(b"GET /v1/export/s3/liar HTTP/1.1\r\nHost: x\r\n\r\n")
            head, body = _head_and_body(sock)
            assert b"Content-Length: 1000000000000" in head and 0 < len(body) < 1000
            sock.settimeout(0.3)
            with pytest.raises(TimeoutError):  # the rest never comes, the connection stays
                sock.recv(65536)
        assert _wait_for_no_connections(sim)  # and the simulator lets go once the client has gone

    def test_endless_body_stops_once_the_client_has_gone(self, sim: UpstreamSimulator) -> None:
        sim.add_job("zilliz-import-v1", "e", [fault_endless(lure=JobState(ready=1))])
        with socket.create_connection(("127.0.0.1", sim.port), timeout=3) as sock:
            sock.sendall(b"GET /v1/vector/collections/import/get?jobId=e&clusterId=c HTTP/1.1\r\n\r\n")
            head, body = _head_and_body(sock)
            while len(body) < 3 * 1024 * 1024:
                body += sock.recv(1 << 20)
        assert b"Transfer-Encoding: chunked" in head
        assert b'"readyPercentage":1' in body[:2000] and body.count(b"0,") > 1_000_000
        assert _wait_for_no_connections(sim)
        assert [r.status for r in sim.requests_log() if r.job_id == "e"] == [200]

    def test_endless_body_has_a_bound_on_the_simulators_side(
        self, sim: UpstreamSimulator, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(hostile_bodies, "ENDLESS_MAX_BYTES", 1024 * 1024)
        sim.add_job("weaviate-export", "e", [fault_endless()])
        raw = _raw_exchange(sim.port, b"GET /v1/export/s3/e HTTP/1.1\r\n\r\n", read_until_close=True)
        assert 1024 * 1024 < len(raw) < 2 * 1024 * 1024  # then the simulator closed the connection

    def test_slow_drip_stays_within_the_read_timeout_and_never_ends_in_time(
        self, sim: UpstreamSimulator
    ) -> None:
        sim.add_job("milvus-import", "drip", [fault_slow(0.1, lure=JobState(status="Completed"))])
        timeout = httpx.Timeout(5.0, read=0.5)
        received = b""
        with (
            httpx.Client(base_url=sim.base_url, timeout=timeout) as c,
            c.stream("POST", "/v2/vectordb/jobs/import/describe", json={"jobId": "drip"}) as r,
        ):
            started = time.monotonic()
            for chunk in r.iter_raw():  # no ReadTimeout: a byte comes every 0.1 s
                received += chunk
                if time.monotonic() - started > 1.0:
                    break
            length = int(r.headers["content-length"])
        assert 4 <= len(received) <= 15 and length > 600 and received.strip() == b""
        assert _wait_for_no_connections(sim)

    def test_deep_json_nests_inside_a_status_body(self, sim: UpstreamSimulator, client: httpx.Client) -> None:
        sim.add_job("weaviate-export", "deep", [fault_deep(40, lure=SUCCESS_LURE), fault_deep(100_000)])
        shallow = client.get("/v1/export/s3/deep")
        assert shallow.content.startswith(b'{"meta":' + b"[" * 40 + b"]" * 40 + b',"')
        assert shallow.json()["status"] == "SUCCESS" and shallow.json()["id"] == "deep"
        assert client.get("/v1/export/s3/deep").content.count(b"[") >= 100_000

    @pytest.mark.parametrize("status", [401, 403, 404, 429, 500])
    def test_echo_repeats_the_credential_in_body_and_headers(
        self, sim: UpstreamSimulator, status: int
    ) -> None:
        sim.add_job("weaviate-export", "w", [fault_echo(status)], api_key=KEY)
        sim.add_job("pinecone-import", "p", [fault_echo(status)], api_key=KEY)
        with httpx.Client(base_url=sim.base_url, timeout=5.0) as c:
            weaviate = c.get("/v1/export/s3/w", headers={"Authorization": f"Bearer {KEY}"})
            pinecone = c.get("/bulk/imports/p", headers={"Api-Key": KEY})
        assert weaviate.status_code == pinecone.status_code == status
        assert f"Bearer {KEY}" in weaviate.json()["error"][0]["message"]
        assert weaviate.headers[ECHO_HEADER] == f"Bearer {KEY}"
        assert KEY in pinecone.json()["message"] and pinecone.headers[ECHO_HEADER] == KEY
        assert pinecone.json()["echo"] == {"authorization": KEY}
        assert ("www-authenticate" in weaviate.headers) is (status == 401)

    def test_echo_with_an_api_code_in_http_200(self, sim: UpstreamSimulator) -> None:
        token = "labuser:" + KEY
        sim.add_job("milvus-import", "m", [fault_echo(200, code=1800, message="auth failed")], api_key=token)
        with httpx.Client(base_url=sim.base_url, timeout=5.0) as c:
            r = c.post(
                "/v2/vectordb/jobs/import/describe",
                json={"jobId": "m"},
                headers={"Authorization": f"Bearer {token}"},
            )
        assert r.status_code == 200 and r.json()["code"] == 1800
        assert r.json()["message"] == f"auth failed (request: Bearer {token})"


# -- JSON forms and the control API ----------------------------------------------------------------------

ALL_STEPS: list[Step] = [
    state("TRANSFERRING", objects=1200, repeat=2),
    state(ready=0.5, error_message="x", files=["a.parquet"], total_rows=10, rows=5, progress=50.0),
    state("SUCCESS", shards={"C": {"s": {"status": "SUCCESS", "objectsExported": 3}}}, size=1.5),
    state("FAILED", extra={"completedAt": ZERO_TIME}, drop=["tookInMs"], delay_ms=20),
    hold(state("Importing")),
    fault_http(500),
    fault_http(502, "<html>bad</html>", content_type="text/html", headers={"X-A": "1"}),
    fault_html(),
    fault_rate_limit(1),
    fault_rate_limit("Wed, 21 Oct 2015 07:28:00 GMT"),
    fault_malformed(),
    fault_array(),
    fault_drift(["status"]),
    fault_api_error(80010, "dup"),
    fault_hang(3.5),
    fault_reset(repeat=2),
    fault_disconnect(),
    unknown_status("WEIRD").times(4),
    fault_oversized(),
    fault_oversized(3_000_000, mode="length", lure=JobState(status="SUCCESS", objects=3)),
    fault_endless(lure=JobState(ready=1)),
    fault_slow(0.2, repeat=2),
    fault_deep(40, lure=JobState(status="Completed")),
    fault_echo(403),
    fault_echo(200, code=80001, message="Invalid token"),
    fault_echo(429, retry_after=1),
]


def test_step_json_round_trip() -> None:
    encoded = steps_to_json(ALL_STEPS)
    assert steps_from_json(json.loads(json.dumps(encoded))) == ALL_STEPS
    assert encoded[0] == {"state": {"status": "TRANSFERRING", "objects": 1200}, "repeat": 2}
    assert encoded[5] == {"fault": {"kind": "http", "status": 500}}
    assert encoded[8] == {"fault": {"kind": "rate_limit", "status": 429, "retryAfter": "1"}}
    assert Step.from_json("SUCCESS") == state("SUCCESS")
    assert Step.from_json({"hold": True}) == hold()
    assert Step.from_json({"state": {"errorMessage": "e", "total_rows": 3}}) == state(error="e", total_rows=3)
    with pytest.raises(ValueError):
        Step.from_json({"state": {"bogus": 1}})
    with pytest.raises(ValueError):
        Step.from_json({"fault": {"kind": "nope"}})
    with pytest.raises(ValueError):
        Step(state=JobState(), fault=fault_reset().fault)


class TestControlApi:
    def test_jobs_advance_requests_reset(self, sim: UpstreamSimulator, client: httpx.Client) -> None:
        steps = steps_to_json([state("Pending"), hold(), state("Completed")])
        created = client.post(
            "/_sim/jobs",
            json={"source": "zilliz-import-v2", "jobId": "j1", "steps": steps, "scope": "c1", "apiKey": "k"},
        )
        assert created.status_code == 201
        url, body = "/v2/vectordb/jobs/import/getProgress", {"jobId": "j1", "clusterId": "c1"}
        auth = {"Authorization": "Bearer k"}
        assert client.post(url, json=body).status_code == 401
        assert client.post(url, json=body, headers=auth).json()["data"]["state"] == "Pending"
        assert client.post(url, json=body, headers=auth).json()["data"]["state"] == "Pending"
        assert client.post("/_sim/advance/j1").json() == {"advanced": 1}
        assert client.post(url, json=body, headers=auth).json()["data"]["state"] == "Completed"
        assert client.post("/_sim/advance/unknown").status_code == 404
        log = client.get("/_sim/requests").json()
        assert log["total"] == 4 and log["byJob"] == {"j1": 4}
        assert log["byPath"] == {url: 4}
        assert [r["status"] for r in log["requests"]] == [401, 200, 200, 200]
        assert log["requests"][0] == {**log["requests"][0], "method": "POST", "jobId": "j1"}
        assert client.get("/_sim/requests", params={"since": 3}).json()["requests"][0]["status"] == 200
        assert "requests" not in client.get("/_sim/requests", params={"log": "false"}).json()
        assert client.get("/_sim/jobs").json()["jobs"][0]["jobId"] == "j1"
        assert client.post("/_sim/reset").json() == {"ok": True}
        assert client.get("/_sim/requests").json()["total"] == 0
        assert client.post(url, json=body).json()["code"] != 0  # job gone

    def test_static_set_all_latency(self, sim: UpstreamSimulator, client: httpx.Client) -> None:
        added = client.post(
            "/_sim/static",
            json={"source": "weaviate-export", "count": 50, "prefix": "job-", "backend": "s3"},
        )
        assert added.status_code == 201 and added.json()["added"] == 50
        assert added.json()["first"] == ["job-00000"]
        assert client.get("/v1/export/s3/job-00049").json()["status"] == "TRANSFERRING"
        flipped = client.post(
            "/_sim/set-all", json={"source": "weaviate-export", "state": {"status": "FAILED"}}
        )
        assert flipped.json() == {"changed": 50}
        assert client.get("/v1/export/s3/job-00049").json()["status"] == "FAILED"
        client.post("/_sim/set-all", json={"source": "weaviate-export", "step": {"fault": {"kind": "array"}}})
        assert isinstance(client.get("/v1/export/s3/job-00001").json(), list)
        ids = client.post(
            "/_sim/static", json={"source": "milvus-import", "ids": ["7", "8"], "state": "Importing"}
        )
        assert ids.json()["added"] == 2
        assert client.put("/_sim/latency", json={"latencyMs": 120}).json() == {"latencyMs": 120.0}
        started = time.monotonic()
        client.post("/v2/vectordb/jobs/import/describe", json={"jobId": "7"})
        assert time.monotonic() - started >= 0.12
        client.post("/_sim/reset")
        assert sim.latency_ms == 0

    def test_bad_control_requests_are_400(self, client: httpx.Client) -> None:
        assert (
            client.post("/_sim/jobs", json={"source": "nope", "jobId": "x", "steps": []}).status_code == 400
        )
        bad_steps = {"source": "milvus-import", "jobId": "x", "steps": [{"fault": {"kind": "??"}}]}
        assert client.post("/_sim/jobs", json=bad_steps).status_code == 400
        assert (
            client.post("/_sim/jobs", content=b"[", headers={"content-type": "application/json"}).status_code
            == 400
        )
        assert client.get("/_sim/nothing").status_code == 404


def test_counters(sim: UpstreamSimulator, client: httpx.Client) -> None:
    sim.add_job("weaviate-export", "a", [state("TRANSFERRING")])
    sim.add_job("weaviate-backup", "a", [state("STARTED")])
    client.get("/v1/export/s3/a")
    client.get("/v1/export/s3/a")
    client.get("/v1/backups/s3/a")
    client.get("/v1/export/s3/zzz")
    assert sim.request_count("a") == 3
    assert sim.request_count("a", source="weaviate-backup") == 1
    assert sim.job_counts() == {"a": 3, "zzz": 1}
    assert sim.path_counts() == {"/v1/export/s3/a": 2, "/v1/backups/s3/a": 1, "/v1/export/s3/zzz": 1}
    log = sim.requests_log()
    assert [(r.method, r.path, r.source, r.job_id, r.status) for r in log][-1] == (
        "GET",
        "/v1/export/s3/zzz",
        "weaviate-export",
        "zzz",
        404,
    )


# -- the HTTP/1.1 core -----------------------------------------------------------------------------------


def _raw_exchange(port: int, payload: bytes, *, read_until_close: bool = False) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=3) as sock:
        sock.sendall(payload)
        chunks = []
        sock.settimeout(0.5 if not read_until_close else 3)
        try:
            while True:
                data = sock.recv(65536)
                if not data:
                    break
                chunks.append(data)
        except TimeoutError:
            pass
        return b"".join(chunks)


class TestHttpCore:
    def test_keep_alive_pipelining_and_close(self, sim: UpstreamSimulator) -> None:
        sim.add_job("weaviate-export", "k", [state("STARTED"), state("SUCCESS")])
        request = b"GET /v1/export/s3/k HTTP/1.1\r\nHost: x\r\n\r\n"
        closing = b"GET /v1/export/s3/k HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        raw = _raw_exchange(sim.port, request + closing, read_until_close=True)
        assert raw.count(b"HTTP/1.1 200 OK") == 2
        assert b'"status":"STARTED"' in raw and b'"status":"SUCCESS"' in raw
        assert raw.count(b"Connection: close") == 1  # first answer kept the connection open

    def test_http10_closes_and_chunked_body(self, sim: UpstreamSimulator) -> None:
        sim.add_job("milvus-import", "1", [state("Importing")])
        raw = _raw_exchange(sim.port, b"GET /v1/export/s3/none HTTP/1.0\r\n\r\n", read_until_close=True)
        assert raw.startswith(b"HTTP/1.1 404") and b"Connection: close" in raw
        body = b'{"jobId":"1"}'
        chunked = (
            b"POST /v2/vectordb/jobs/import/describe HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
            b"Connection: close\r\n\r\n" + f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n"
        )
        assert b'"state":"Importing"' in _raw_exchange(sim.port, chunked, read_until_close=True)

    def test_bad_requests(self, sim: UpstreamSimulator) -> None:
        assert _raw_exchange(sim.port, b"NONSENSE\r\n\r\n").startswith(b"HTTP/1.1 400")
        bad_length = b"POST /x HTTP/1.1\r\nContent-Length: abc\r\n\r\n"
        assert _raw_exchange(sim.port, bad_length).startswith(b"HTTP/1.1 400")
        huge = b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n"
        assert _raw_exchange(sim.port, huge).startswith(b"HTTP/1.1 431")

    def test_handler_exception_is_500(self) -> None:
        class Broken(HttpApp):
            async def handle(self, request: Request) -> Response:
                raise RuntimeError("boom")

        with Broken() as app, httpx.Client(base_url=app.base_url) as c:
            assert c.get("/").status_code == 500
            assert c.get("/").status_code == 500  # connection survives

    def test_64_concurrent_keep_alive_clients_with_latency(self, sim: UpstreamSimulator) -> None:
        """64 connections x 3 sequential requests at 50 ms each finish in ~150 ms, not 64 x 150 ms."""
        sim.add_static_jobs("weaviate-export", [f"j{i}" for i in range(64)])
        sim.latency_ms = 50

        async def one_client(n: int) -> int:
            reader, writer = await asyncio.open_connection("127.0.0.1", sim.port)
            for _ in range(3):
                writer.write(f"GET /v1/export/s3/j{n} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
                await reader.readexactly(length)
            writer.close()
            return n

        async def main() -> float:
            started = time.monotonic()
            done = await asyncio.gather(*(one_client(n) for n in range(64)))
            assert sorted(done) == list(range(64))
            return time.monotonic() - started

        elapsed = asyncio.run(main())
        assert elapsed < 1.0
        assert sum(sim.job_counts().values()) == 192

    async def test_runs_inside_a_running_loop(self) -> None:
        app = UpstreamSimulator()
        url = await app.start_async()
        app.add_job("weaviate-export", "a", [state("SUCCESS")])
        async with httpx.AsyncClient(base_url=url) as c:
            assert (await c.get("/v1/export/s3/a")).json()["status"] == "SUCCESS"
        await app.stop_async()


def test_moto_subprocess_start_and_stop() -> None:
    pytest.importorskip("moto")
    proc = moto_process()
    url = proc.start()
    try:
        assert httpx.get(url + "/moto-api/").status_code == 200
    finally:
        proc.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(url + "/moto-api/")


def test_subprocess_start_and_stop() -> None:
    proc = simulator_process(latency_ms=5)
    url = proc.start()
    try:
        assert url.startswith("http://127.0.0.1:") and proc.port > 0
        with httpx.Client(base_url=url) as c:
            steps = steps_to_json([state("TRANSFERRING"), state("SUCCESS")])
            c.post("/_sim/jobs", json={"source": "weaviate-export", "jobId": "e", "steps": steps})
            assert c.get("/v1/export/s3/e").json()["status"] == "TRANSFERRING"
            assert c.get("/_sim/latency").json() == {"latencyMs": 5.0}
    finally:
        assert proc.stop() == 0
    with pytest.raises(httpx.ConnectError):
        httpx.get(url + "/_sim/requests")
