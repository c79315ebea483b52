"""Fault-injection soak (`make soak`): thousands of random job stories under faults, then invariants.

Runs `jobwatch_devkit.faultlab` (see its docstring for what is injected and checked) against a moto
server subprocess, in-process upstream simulators, an in-process Slack sink (webhook) and, behind the
lab's stored routes, a second sink (Slack app channels, Web API), a signed-webhook receiver and an
EventBridge bus on moto. Progress goes to stderr; the last line on stdout is one JSON object
(`schedules`, `transitions`, `deliveries_expected`, `delivered`, `lost`, `duplicated`, `false_alerts`,
`destinations` with per-destination invariants and `ok` flags, ...). Exit status 1 when any invariant
failed.

Environment: SOAK_SCHEDULES (default 3000), SOAK_ROUND (schedules per round, default 250),
SOAK_SEED (default 1), SOAK_SIMULATORS (upstream endpoints, default 8), SOAK_ROUTES (default 1; 0:
no stored routes, so only the default Slack webhook and e-mail), SOAK_SHARDS (K poll shards, default
4: half the cycles fan out to poll workers, with worker crashes and timeouts, duplicated
coordinators and late orders, and `polled_twice_in_cycle` must stay 0; 1: no fan-out).
"""

from __future__ import annotations

import json
import os
import sys
import urllib.request

from jobwatch_devkit.faultlab import FaultLab, LabConfig, print_progress
from jobwatch_devkit.harness import LocalDeployment
from jobwatch_devkit.processes import moto_process
from jobwatch_devkit.slack_sink import SlackSink

SCHEDULES = int(os.environ.get("SOAK_SCHEDULES", "3000"))
PER_ROUND = int(os.environ.get("SOAK_ROUND", "250"))
SEED = int(os.environ.get("SOAK_SEED", "1"))
SIMULATORS = int(os.environ.get("SOAK_SIMULATORS", "8"))
ROUTES = os.environ.get("SOAK_ROUTES", "1") not in ("0", "false", "no")
SHARDS = int(os.environ.get("SOAK_SHARDS", "4"))


def _reset_moto(url: str) -> None:
    request = urllib.request.Request(f"{url}/moto-api/reset", method="POST")  # noqa: S310 - local URL
    with urllib.request.urlopen(request, timeout=30):  # noqa: S310 - local URL
        pass


def main() -> int:
    os.environ.pop("AWS_PROFILE", None)
    rounds = max(1, -(-SCHEDULES // PER_ROUND))
    per_round = -(-SCHEDULES // rounds)
    config = LabConfig(
        seed=SEED,
        rounds=rounds,
        schedules_per_round=per_round,
        simulators=SIMULATORS,
        routes=ROUTES,
        shards=SHARDS,
        progress=print_progress,
    )
    print_progress(f"soak: {rounds} rounds x {per_round} schedules, seed {SEED}")
    moto = moto_process()
    sink = SlackSink()
    moto.start()
    sink.start()
    try:

        def deployment(extra_env: dict[str, str]) -> LocalDeployment:
            _reset_moto(moto.url)
            return LocalDeployment(moto.url, sink.url, extra_env=extra_env)

        summary = FaultLab(config, deployment, sink).run()
    finally:
        sink.stop()
        moto.stop()
    print(json.dumps(summary, sort_keys=False))
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
