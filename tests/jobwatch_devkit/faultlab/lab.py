"""`FaultLab`: starts the upstream simulators, runs the rounds and folds their results into the summary."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from jobwatch.observability import logger

from ..harness import LocalDeployment
from ..simulator import UpstreamSimulator
from ..slack_sink import SlackSink
from .config import LabConfig
from .invariants import RoundResult
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

    def _say(self, text: str) -> None:
        if self.config.progress is not None:
            self.config.progress(text)

    def run(self) -> dict[str, Any]:
        started = time.monotonic()
        total = RoundResult()
        quiet = _Quiet()
        try:
            quiet.__enter__()
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
                for problem in result.problems[:20]:
                    self._say(f"  {problem}")
        finally:
            for sim in self.simulators:
                sim.stop()
            self.simulators.clear()
            quiet.__exit__(None, None, None)
        self.problems = list(total.problems)
        return total.summary(
            rounds=self.config.rounds,
            seed=self.config.seed,
            elapsed_s=round(time.monotonic() - started, 1),
        )


class _Quiet:
    """jobwatch's per-poll log lines and asyncio's complaints about crashed runs, muted for the run."""

    def __enter__(self) -> None:
        self._level = logger.log_level
        self._asyncio = logging.getLogger("asyncio").level
        logger.setLevel("CRITICAL")
        logging.getLogger("asyncio").setLevel(logging.CRITICAL)

    def __exit__(self, *_: object) -> None:
        logger.setLevel(self._level)
        logging.getLogger("asyncio").setLevel(self._asyncio)
