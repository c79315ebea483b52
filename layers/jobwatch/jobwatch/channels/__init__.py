"""Chat channels (Slack, ...): pure payload builders that share the wording in `jobwatch.messages`."""

from jobwatch.channels.base import Channel

__all__ = ["Channel"]
