"""The channel interface: a chat destination that turns a transition into its own payload.

Rendering is pure; sending (HTTP, retries, rate limiting) belongs to the sender, which reads the
declared limits so it can pace itself and check a payload before posting it.
"""

from __future__ import annotations

from typing import Any, ClassVar, Protocol

from jobwatch.domain.model import Transition


class Channel(Protocol):
    """What every chat channel declares and does."""

    name: ClassVar[str]
    """Short identifier used in logs and delivery claims, e.g. `slack`."""
    max_blocks: ClassVar[int]
    """Most layout blocks one message may carry."""
    max_section_chars: ClassVar[int]
    """Most characters in one section's text."""
    max_header_chars: ClassVar[int]
    """Most characters in the header line."""
    max_messages_per_second: ClassVar[float]
    """Documented posting rate per destination; the sender paces itself to it."""

    def render(self, t: Transition) -> dict[str, Any]:
        """The JSON-ready payload for one transition, within the limits above."""
        ...
