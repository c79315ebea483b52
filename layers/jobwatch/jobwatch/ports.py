"""The interfaces the application needs from the outside world, declared once.

Adapters in `jobwatch.adapters` implement them against AWS and HTTP; the test devkit implements them
in memory (`jobwatch_devkit.fakes`) for the component tier, which runs the application with no
sockets. Protocols, so an adapter never inherits from the application.
"""

from __future__ import annotations

from typing import Protocol

from jobwatch.domain.model import Transition


class Publisher(Protocol):
    """Publishes a transition event once (the transitions topic); returns the message id."""

    def publish(self, transition: Transition) -> str: ...


class Secrets(Protocol):
    """Reads a secret's value by name; raises `SecretUnavailableError` naming the secret, never the value."""

    def get(self, name: str) -> str: ...
