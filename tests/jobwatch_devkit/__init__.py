"""Offline stand-ins for jobwatch's upstreams: an API simulator and a Slack webhook sink on real sockets.

Both run on a small asyncio HTTP/1.1 core (`http11`) so tests, the demo and the benchmark exercise the
same client code paths (keep-alive, timeouts, resets) as production, without network access.
"""
