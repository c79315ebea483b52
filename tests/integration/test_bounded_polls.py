"""A hostile upstream cannot hurt the fleet: every answer is bounded in time, size and depth.

Each case runs one real poll cycle (the real HTTP adapter on real sockets, state in the in-memory
fakes) in its own process against `jobwatch_devkit.hostile`, so the process's peak RSS and wall time
are the cycle's. The good job next to the hostile ones must still be watched: one broken
or malicious endpoint must not cost the others their poll.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from jobwatch_devkit.hostile import BOMB_INFLATED_BYTES, HostileUpstream

pytestmark = pytest.mark.integration

DEADLINE_S = 3.0
RSS_BOUND_MB = 120.0
"""Peak RSS of a whole poll process (interpreter, boto3, pydantic, aiohttp: about 55 MB idle here).
A 300 MB compression bomb inflated in memory, as before the body cap, peaked at 650 MB or more."""
SECRET = "sk-live-0123456789abcdef"


@pytest.fixture(scope="module")
def hostile() -> Iterator[HostileUpstream]:
    server = HostileUpstream(drip_every_s=0.5).start()
    try:
        yield server
    finally:
        server.stop()


def _cycle(hostile: HostileUpstream, *job_ids: str) -> tuple[dict[str, Any], float, float]:
    """(result, seconds, peak RSS in MB) of one poll cycle over these Weaviate export ids. The seconds
    are the cycle's own (its report's duration), not the child interpreter's start-up, which a loaded
    machine can stretch past the deadline by itself."""
    env = {
        **os.environ,
        "JOBWATCH_ALLOW_HTTP_LOOPBACK": "true",
        "JOBWATCH_UPSTREAM_DEADLINE_S": str(DEADLINE_S),
        "JOBWATCH_READ_TIMEOUT_S": "2",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "jobwatch_devkit.hostile", hostile.url, *job_ids],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert process.stdout is not None and process.stderr is not None
    out, err = process.stdout.read(), process.stderr.read()
    code = process.wait()
    assert code == 0, err.decode()[-2000:]
    result = json.loads(out)
    elapsed = float(result["cycle"]["duration_s"])
    result["logs"] = err.decode()
    # The process's own peak (getrusage after the cycle): wait4's figure would include the pytest
    # process it was forked from.
    return result, elapsed, float(result["maxrss_mb"])


def _only_error(result: dict[str, Any]) -> str:
    (error,) = result["errors"]
    return str(error["error"])


def test_a_compression_bomb_is_cut_off_at_the_body_cap(hostile: HostileUpstream) -> None:
    result, elapsed, rss = _cycle(hostile, "bomb", "ok-control")
    assert _only_error(result).startswith("TOO_LARGE")
    assert result["events"] == [["ok-control", "STARTED"]]
    assert elapsed < DEADLINE_S + 5 and rss < RSS_BOUND_MB, (elapsed, rss, BOMB_INFLATED_BYTES)


def test_an_endless_body_is_cut_off_at_the_body_cap(hostile: HostileUpstream) -> None:
    result, elapsed, rss = _cycle(hostile, "endless", "ok-control")
    assert _only_error(result).startswith("TOO_LARGE")
    assert result["events"] == [["ok-control", "STARTED"]]
    assert elapsed < DEADLINE_S + 5 and rss < RSS_BOUND_MB, (elapsed, rss)


def test_a_slow_drip_is_cut_off_at_the_total_deadline(hostile: HostileUpstream) -> None:
    result, elapsed, rss = _cycle(hostile, "drip", "ok-control")
    assert _only_error(result).startswith("TOO_SLOW")
    assert result["events"] == [["ok-control", "STARTED"]]
    assert DEADLINE_S <= elapsed < DEADLINE_S + 5 and rss < RSS_BOUND_MB, (elapsed, rss)


def test_a_content_length_that_never_arrives_is_refused_from_its_header(hostile: HostileUpstream) -> None:
    result, elapsed, rss = _cycle(hostile, "huge-length")
    assert _only_error(result).startswith("TOO_LARGE: Content-Length")
    assert elapsed < DEADLINE_S and rss < RSS_BOUND_MB, (elapsed, rss)


def test_deeply_nested_json_is_a_poll_error(hostile: HostileUpstream) -> None:
    result, elapsed, rss = _cycle(hostile, "deep")
    assert _only_error(result).split(" ")[0] in ("TOO_DEEP", "TOO_DEEP:")
    assert elapsed < DEADLINE_S + 5 and rss < RSS_BOUND_MB, (elapsed, rss)


def test_many_hostile_upstreams_in_one_cycle_stay_bounded_and_the_good_job_is_watched(
    hostile: HostileUpstream,
) -> None:
    hostile_ids = [f"bomb~{n}" for n in range(16)] + ["endless~1", "endless~2", "drip~1", "huge-length~1"]
    result, elapsed, rss = _cycle(hostile, *hostile_ids, "ok-control")
    kinds = sorted({e["error"].split(":")[0] for e in result["errors"]})
    assert kinds == ["TOO_LARGE", "TOO_SLOW"]
    assert result["cycle"]["poll_errors"] == len(hostile_ids)
    assert result["events"] == [["ok-control", "STARTED"]]
    assert elapsed < DEADLINE_S + 8 and rss < RSS_BOUND_MB, (elapsed, rss)


@pytest.mark.parametrize("status", [200, 401, 403, 404, 429, 500, 502])
def test_a_secret_echoed_by_the_upstream_is_redacted_before_anything_keeps_it(
    hostile: HostileUpstream, status: int
) -> None:
    result, _, _ = _cycle(hostile, f"echo-{status}")
    kept = json.dumps(result)  # what was stored, published, reported and logged
    assert SECRET not in kept and "poll failed" in result["logs"]
    assert "[redacted]" in _only_error(result)
    assert "[redacted]" in json.dumps(result["stored"])  # the job item's last_error
