"""The poller's HTTP side: httpx clients over an asyncio backend that applies the endpoint rules."""
