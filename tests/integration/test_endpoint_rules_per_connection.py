"""The endpoint (SSRF) rules hold at request time, not only at registration.

A name checked at registration can later resolve somewhere else (DNS rebinding, a re-pointed record).
The poller's network backend resolves the host itself, puts every address to the same rules, and
connects only to an address that passed; a refusal is an ordinary poll error and no request leaves.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

import pytest

from jobwatch.adapters.dynamodb.jobs import DynamoJobStore
from jobwatch.adapters.http import aio_transport
from jobwatch.domain.model import JobSpec, Phase
from jobwatch.entrypoints.wiring import CLOCK, job_store
from jobwatch_devkit.harness import LocalDeployment
from jobwatch_devkit.simulator import UpstreamSimulator, state

pytestmark = pytest.mark.integration

EXPORT = "weaviate-export"


def _resolving_to(address: str) -> Callable[[str, int], object]:
    async def resolve(host: str, port: int) -> list[str]:
        return [address]

    return resolve


def _track_as_if_registered_earlier(store: DynamoJobStore, endpoint: str, job_id: str) -> str:
    """Write the job the way registration would have, when its name still pointed elsewhere."""
    spec = JobSpec(source=EXPORT, endpoint=endpoint, job_id=job_id, backend="s3")
    job, created = store.add_job(spec, CLOCK.now_iso())
    assert created
    return job.key


@pytest.mark.parametrize("internal", ["127.0.0.1", "169.254.169.254", "10.0.0.7"])
def test_a_name_that_now_resolves_to_an_internal_address_is_refused_before_any_request(
    deployment: LocalDeployment,
    sim: UpstreamSimulator,
    sim_url: str,
    store: DynamoJobStore,
    monkeypatch: pytest.MonkeyPatch,
    internal: str,
) -> None:
    port = urlsplit(sim_url).port
    sim.add_job(EXPORT, "exp-rebound", [state("STARTED")], backend="s3")
    key = _track_as_if_registered_earlier(store, f"http://exports.rebind.test:{port}", "exp-rebound")
    monkeypatch.setattr(aio_transport, "CONNECT_RESOLVER", _resolving_to(internal))

    report = deployment.poll()

    assert (report.polled, report.poll_errors, report.transitions) == (1, 1, 0)
    (error,) = report.errors
    assert "refused by the endpoint rules" in error["error"] and internal in error["error"]
    assert sim.request_count("exp-rebound") == 0  # nothing was sent, not even to the simulator
    stored = store.get_job(key)
    assert stored is not None and stored.snapshot is None and stored.version == 0
    assert deployment.published() == []


def test_an_address_the_deployment_allows_is_connected_to_and_polled(
    make_deployment: Callable[..., LocalDeployment],
    sim: UpstreamSimulator,
    sim_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The connection goes to the address that was checked (here loopback, allowed by CIDR)."""
    deployment = make_deployment({"JOBWATCH_ENDPOINT_ALLOWLIST": "127.0.0.0/8"})
    store = job_store(deployment.settings)
    port = urlsplit(sim_url).port
    sim.add_job(EXPORT, "exp-allowed", [state("STARTED")], backend="s3")
    key = _track_as_if_registered_earlier(store, f"http://exports.allowed.test:{port}", "exp-allowed")
    monkeypatch.setattr(aio_transport, "CONNECT_RESOLVER", _resolving_to("127.0.0.1"))

    report = deployment.poll()

    assert (report.polled, report.poll_errors, report.transitions) == (1, 0, 1)
    assert sim.request_count("exp-allowed") == 1
    stored = store.get_job(key)
    assert stored is not None and stored.snapshot is not None and stored.snapshot.phase is Phase.RUNNING
