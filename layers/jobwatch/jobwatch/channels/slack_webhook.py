"""Slack through an incoming webhook: Block Kit within Slack's limits, about one message a second."""

from __future__ import annotations

from typing import Any, ClassVar

from jobwatch.domain.model import Transition
from jobwatch.render.slack_blocks import (
    MAX_BLOCKS,
    MAX_FIELD_CHARS,
    MAX_FIELDS_PER_SECTION,
    MAX_HEADER_CHARS,
    MAX_SECTION_CHARS,
    render_payload,
)


class SlackChannel:
    """Slack incoming webhook: Block Kit limits and the documented 1 message/second."""

    name: ClassVar[str] = "slack"
    max_blocks: ClassVar[int] = MAX_BLOCKS
    max_section_chars: ClassVar[int] = MAX_SECTION_CHARS
    max_field_chars: ClassVar[int] = MAX_FIELD_CHARS
    max_fields_per_section: ClassVar[int] = MAX_FIELDS_PER_SECTION
    max_header_chars: ClassVar[int] = MAX_HEADER_CHARS
    max_messages_per_second: ClassVar[float] = 1.0

    def render(self, t: Transition) -> dict[str, Any]:
        return render_payload(t)
