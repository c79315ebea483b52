"""How loud an event is. Part of the domain: routes and subscribers filter on it, every channel shows it."""

from __future__ import annotations

from jobwatch.domain.model import Event

HEALTH_EVENTS = frozenset({"STALLED", "RESUMED", "OVERDUE", "UNREACHABLE", "AUTH_FAILED", "RECOVERED"})
"""Events about jobwatch's view of a job rather than a change of its phase: they carry a `note`."""


SEVERITIES = ("error", "warning", "success", "info")


# Keyed by the event *value* so events added to the model later work without touching this module.
_SEVERITY_BY_EVENT: dict[str, str] = {
    "FAILED": "error",
    "AUTH_FAILED": "error",
    "LOST": "error",
    "CANCELED": "warning",
    "STALLED": "warning",
    "UNREACHABLE": "warning",
    "OVERDUE": "warning",
    "SUCCEEDED": "success",
    "RECOVERED": "success",
    "RESUMED": "success",
}


def severity_for(event: Event | str) -> str:
    """How loud a transition is: error, warning, success or info (unknown events are info)."""
    return _SEVERITY_BY_EVENT.get(str(event), "info")
