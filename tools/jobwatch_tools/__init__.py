"""Operator tools: the `jobwatch` command, the local stack, the local API server. Installed by the
root pyproject, never shipped in the Lambda layer."""
