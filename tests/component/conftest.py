"""The component tier: the application on the in-memory fakes of `jobwatch_devkit.fakes`.

No sockets: pytest-socket refuses every INET socket for these tests (asyncio's own self-pipe is a
Unix socket pair, which stays allowed), so a test that reached for moto, a simulator or DNS fails
instead of silently becoming an integration test.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import pytest_socket

pytestmark = pytest.mark.component


@pytest.fixture(autouse=True)
def _no_network() -> Iterator[None]:
    pytest_socket.disable_socket(allow_unix_socket=True)
    try:
        yield
    finally:
        pytest_socket.enable_socket()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/component/" in str(item.fspath):
            item.add_marker(pytest.mark.component)
