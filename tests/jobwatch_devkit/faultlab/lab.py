"""`FaultLab`: starts the upstream simulators, runs the rounds and folds their results into the summary.

jobwatch's log lines are captured for the whole run (at INFO, as deployed) and searched for API keys
instead of being printed (`invariants.LogScan`).
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from typing import Any

from jobwatch.observability import logger

from ..harness import LocalDeployment
from ..simulator import UpstreamSimulator
from ..slack_sink import SlackSink
from ..webhook_receiver import WebhookReceiver
from .config import LabConfig
from .invariants import LeakScanner, LogScan, RoundResult
from .rounds import Round

__all__ = ["DeploymentFactory", "FaultLab"]

DeploymentFactory = Callable[[dict[str, str]], LocalDeployment]


class FaultLab:
    """Runs rounds of random schedules; see the package docstring. `run()` returns the JSON summary."""

    def __init__(self, config: LabConfig, deployment_factory: DeploymentFactory, sink: SlackSink) -> None:
        self.config = config
        self.factory = deployment_factory
        self.sink = sink
        self.simulators: list[UpstreamSimulator] = []
        self.problems: list[str] = []
        """What went wrong, one line each (empty when every invariant held)."""
        self.scanner = LeakScanner()
        """Searches everything the lab sees kept (logs, items, events, posts, e-mails) for API keys."""
        self.app_sink = SlackSink()
        """The Slack Web API of the routes' Slack app channels (the webhook sink stays `sink`)."""
        self.receiver = WebhookReceiver(secrets.token_urlsafe(32))
        """The routes' signed webhook: verifies every signature itself."""

    def _say(self, text: str) -> None:
        if self.config.progress is not None:
            self.config.progress(text)

    def run(self) -> dict[str, Any]:
        started = time.monotonic()
        total = RoundResult()
        quiet = _Quiet(self.scanner)
        try:
            quiet.__enter__()
            self._start_destinations()
            for _ in range(self.config.simulators):
                sim = UpstreamSimulator()
                sim.start()
                self.simulators.append(sim)
            for number in range(self.config.rounds):
                round_started = time.monotonic()
                result = Round(self, number).run()
                total.add(result)
                self._say(
                    f"round {number + 1}/{self.config.rounds}: {result.schedules} schedules, "
                    f"{result.transitions} transitions, {result.cycles} cycles, "
                    f"lost {result.lost}, duplicated {result.duplicated}, false {result.false_alerts}, "
                    f"ok={result.ok} ({time.monotonic() - round_started:.1f} s)"
                )
                self._say(
                    f"  fan-out: {result.fanout_cycles} cycles, jobs on {result.shards_used}/"
                    f"{self.config.shards} shards, worker crashes {result.worker_crashes}, "
                    f"timeouts {result.worker_timeouts}, "
                    f"overlapping coordinators {result.overlapping_coordinators}, late orders "
                    f"{result.late_orders}, polled twice in a cycle {result.polled_twice_in_cycle}"
                )
                self._say(
                    "  "
                    + ", ".join(f"{n}: {t.delivered}/{t.expected}" for n, t in result.destinations.items())
                )
                self._report_lines(result)
        finally:
            for sim in self.simulators:
                sim.stop()
            self.simulators.clear()
            self.app_sink.stop()
            self.receiver.stop()
            quiet.__exit__(None, None, None)
        self.problems = list(total.problems)
        return total.summary(
            rounds=self.config.rounds,
            seed=self.config.seed,
            elapsed_s=round(time.monotonic() - started, 1),
        )

    def _report_lines(self, result: RoundResult, limit: int = 40) -> None:
        """What broke an invariant first (all of it up to `limit`), then a few diagnostics."""
        for problem in result.problems[:limit]:
            self._say(f"  {problem}")
        if len(result.problems) > limit:
            self._say(f"  ... and {len(result.problems) - limit} more problems")
        if result.diagnostics:
            self._say(f"  diagnostics ({len(result.diagnostics)}, e.g.): {result.diagnostics[0]}")

    def _start_destinations(self) -> None:
        if self.config.routes:
            self.app_sink.start()
            self.receiver.start()


class _Quiet:
    """jobwatch's log lines go to the leak scanner instead of stderr (at INFO, the deployed level);
    asyncio's complaints about crashed runs are muted for the run."""

    def __init__(self, scanner: LeakScanner) -> None:
        self.stream = LogScan(scanner)
        self._streams: list[tuple[logging.StreamHandler[Any], Any]] = []

    def __enter__(self) -> None:
        self._level = logger.log_level
        self._asyncio = logging.getLogger("asyncio").level
        for handler in logger.handlers:
            if isinstance(handler, logging.StreamHandler):
                self._streams.append((handler, handler.setStream(self.stream)))
        logger.setLevel("INFO")
        logging.getLogger("asyncio").setLevel(logging.CRITICAL)

    def __exit__(self, *_: object) -> None:
        logger.setLevel(self._level)
        logging.getLogger("asyncio").setLevel(self._asyncio)
        for handler, stream in self._streams:
            handler.setStream(stream)
        self._streams.clear()
