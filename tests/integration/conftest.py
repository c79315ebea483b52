"""Integration plumbing: one moto server, one upstream simulator and one Slack sink per session.

moto runs as a subprocess (its own GIL, a real HTTP endpoint reached through AWS_ENDPOINT_URL) and is
reset with `POST /moto-api/reset` before each test; the simulator and the sink run in process on their
own thread and event loop and are `.reset()` per test. Each test then gets a fresh `LocalDeployment`
(the stack from template.yaml) with short upstream timeouts, so a hung upstream costs one second.

Tests get everything through fixtures (never `import conftest`).
"""

from __future__ import annotations

import json
import sys
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import botocore.session
import pytest
from botocore.loaders import Loader

from jobwatch.adapters.dynamodb.jobs import DynamoJobStore
from jobwatch.entrypoints.wiring import job_store
from jobwatch.observability import logger, metrics
from jobwatch_devkit.harness import LocalDeployment, clear_process_caches
from jobwatch_devkit.processes import moto_process
from jobwatch_devkit.simulator import UpstreamSimulator
from jobwatch_devkit.slack_sink import SlackSink

FAST_TIMEOUTS = {"JOBWATCH_READ_TIMEOUT_S": "1", "JOBWATCH_CONNECT_TIMEOUT_S": "1"}
"""A hung upstream times out after one second instead of ten."""


# -- servers, once per session ------------------------------------------------------------------------


@pytest.fixture(scope="session", autouse=True)
def _parse_aws_models_once() -> Iterator[None]:
    """Every boto3 Session shares one botocore data loader, so service models are parsed once.

    The harness clears jobwatch's client caches for every test, and each new session would otherwise
    re-read and re-parse the same static JSON models (about 0.2 s per test, a third of a deployment).
    The loader only reads files shipped with botocore/boto3; sharing it changes no behaviour.
    """
    create_loader = botocore.session.create_loader
    loaders: dict[str | None, Loader] = {}

    def shared_loader(search_path_string: str | None = None) -> Loader:
        loader = loaders.get(search_path_string)
        if loader is None:
            loader = loaders[search_path_string] = create_loader(search_path_string)
        # boto3 appends its own data path to the loader of every new session: keep each path once.
        loader.search_paths[:] = list(dict.fromkeys(loader.search_paths))
        return loader

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(botocore.session, "create_loader", shared_loader)
        yield


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    server = moto_process()
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="session")
def _simulator_server() -> Iterator[UpstreamSimulator]:
    simulator = UpstreamSimulator()
    simulator.start()
    try:
        yield simulator
    finally:
        simulator.stop()


@pytest.fixture(scope="session")
def _sink_server() -> Iterator[SlackSink]:
    sink = SlackSink()
    sink.start()
    try:
        yield sink
    finally:
        sink.stop()


# -- per-test state -------------------------------------------------------------------------------------


@pytest.fixture
def sim(_simulator_server: UpstreamSimulator) -> UpstreamSimulator:
    """The upstream simulator with no jobs and zeroed request counters."""
    _simulator_server.reset()
    return _simulator_server


@pytest.fixture
def sim_url(sim: UpstreamSimulator) -> str:
    """Base URL of the simulator: the `endpoint` of every tracked job."""
    return sim.base_url


@pytest.fixture
def sink(_sink_server: SlackSink) -> SlackSink:
    """The Slack webhook sink with no recorded posts and no scripted answers."""
    _sink_server.reset()
    return _sink_server


def _reset_moto(url: str) -> None:
    request = urllib.request.Request(f"{url}/moto-api/reset", method="POST")  # noqa: S310 - local URL
    with urllib.request.urlopen(request, timeout=10):  # noqa: S310 - local URL
        pass


@pytest.fixture
def make_deployment(
    moto_url: str, sink: SlackSink, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., LocalDeployment]]:
    """Factory: reset moto, then create the stack with FAST_TIMEOUTS plus any extra settings."""
    monkeypatch.delenv("AWS_PROFILE", raising=False)

    def make(extra_env: dict[str, str] | None = None) -> LocalDeployment:
        clear_process_caches()  # closes the Slack sender's HTTP client too
        _reset_moto(moto_url)
        return LocalDeployment(
            moto_url, sink.url, setenv=monkeypatch.setenv, extra_env={**FAST_TIMEOUTS, **(extra_env or {})}
        )

    yield make
    clear_process_caches()


@pytest.fixture
def deployment(make_deployment: Callable[..., LocalDeployment]) -> LocalDeployment:
    return make_deployment()


@pytest.fixture
def store(deployment: LocalDeployment) -> DynamoJobStore:
    """A DynamoJobStore on the deployment's table, for reading job items (versions, snapshots, outbox)."""
    return job_store(deployment.settings)


# -- logs and metrics -------------------------------------------------------------------------------------


class _CurrentStderr:
    """Writes to whatever `sys.stderr` is *now*.

    jobwatch's log handler binds `sys.stderr` when `jobwatch.observability` is imported (at collection,
    while pytest's global capture is installed), so neither capsys nor capfd would see its lines.
    """

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


@pytest.fixture(autouse=True)
def _observability(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """JSON logs at INFO to the current stderr; metrics never accumulate across tests.

    Powertools flushes EMF metrics to stdout by itself after 100 values of one metric, which would
    end up in the middle of a CLI command's output, so each test starts with an empty metric set.
    """
    for handler in logger.handlers:
        if hasattr(handler, "stream"):
            monkeypatch.setattr(handler, "stream", _CurrentStderr())
    level = logger.log_level
    logger.setLevel("INFO")
    metrics.clear_metrics()
    yield
    metrics.clear_metrics()
    logger.setLevel(level)


def _parse_log_lines(text: str) -> list[dict[str, Any]]:
    """The JSON log records among `text`'s lines (other lines are ignored)."""
    records = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                records.append(record)
    return records


@pytest.fixture
def stderr_logs(capsys: pytest.CaptureFixture[str]) -> Callable[[], list[dict[str, Any]]]:
    """Returns a reader of the JSON log records written to stderr since its last call."""

    def read() -> list[dict[str, Any]]:
        return _parse_log_lines(capsys.readouterr().err)

    return read
