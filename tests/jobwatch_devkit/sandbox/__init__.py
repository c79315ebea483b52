"""A local sandbox in one command (`make sandbox`): moto server, the upstream simulator serving sample jobs
of every source, and the Slack sink printing each post, until Ctrl-C.

Why: the README's "Local operation" commands must work as written, offline. The sandbox starts the
stand-ins on fixed ports, creates the template's resources and a sample secret on moto, and writes
the settings to `.sandbox/env` for `. .sandbox/env` in a second terminal. See docs/simulator.md.
"""

from __future__ import annotations

from .run import DEFAULT_MOTO_PORT, DEFAULT_SIMULATOR_PORT, DEFAULT_SLACK_PORT, main
from .samples import DEFAULT_SCENARIO, SANDBOX_API_KEY, SANDBOX_SECRET

__all__ = [
    "DEFAULT_MOTO_PORT",
    "DEFAULT_SCENARIO",
    "DEFAULT_SIMULATOR_PORT",
    "DEFAULT_SLACK_PORT",
    "SANDBOX_API_KEY",
    "SANDBOX_SECRET",
    "main",
]
