"""Suite-wide safety: no test resolves a hostname through real DNS.

Registration resolves endpoint hosts (the SSRF guard). This machine's tests must never send traffic
beyond loopback, so the resolver every test sees by default is a table: `localhost` is loopback and
every other name resolves to one public documentation-style address. Tests about resolution install
their own fake resolvers on top of this.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from jobwatch.app import registration
from jobwatch_devkit.sam import SamCli, build_all, find_sam_cli

PUBLIC_TEST_ADDRESS = "93.184.215.14"


def offline_resolver(host: str) -> Sequence[str]:
    if host.rstrip(".") == "localhost" or host.endswith(".localhost"):
        return ["127.0.0.1", "::1"]
    return [PUBLIC_TEST_ADDRESS]


@pytest.fixture(autouse=True)
def _no_real_dns(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(registration, "RESOLVER", offline_resolver)
    yield


@pytest.fixture(scope="session")
def sam() -> SamCli:
    """The SAM CLI (the template tier and the artifact tests skip, saying why, without one)."""
    found = find_sam_cli()
    if isinstance(found, str):
        pytest.skip(found)
    return found


@pytest.fixture(scope="session")
def sam_build_dir(sam: SamCli, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The whole template built once per session (layer and functions, arm64), shared by every test
    that inspects or runs the artifact."""
    return build_all(sam, tmp_path_factory.mktemp("sam"))
