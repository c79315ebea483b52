"""`Retry-After` as upstream sends it (seconds or an HTTP date) turned into the seconds sources read."""

from __future__ import annotations

import pytest

from jobwatch.adapters.http.client import retry_after_in_seconds
from jobwatch.sources.base import retry_after_seconds

SERVER_DATE = "Thu, 26 Nov 2026 10:00:00 GMT"


@pytest.mark.parametrize(
    ("header", "server_date", "seconds"),
    [
        ("120", None, "120"),
        (" 7 ", SERVER_DATE, "7"),
        ("Thu, 26 Nov 2026 10:05:00 GMT", SERVER_DATE, "300"),  # measured from the server's own clock
        ("Thu, 26 Nov 2026 09:59:00 GMT", SERVER_DATE, "0"),  # already passed
        ("Thu, 26 Nov 2026 10:00:00 GMT", "not a date", "Thu, 26 Nov 2026 10:00:00 GMT"),
        ("soon", SERVER_DATE, "soon"),  # neither form: left for the source to call unknown
    ],
)
def test_retry_after_forms(header: str, server_date: str | None, seconds: str) -> None:
    assert retry_after_in_seconds(header, server_date) == seconds


def test_a_date_without_server_date_is_measured_from_now() -> None:
    assert retry_after_in_seconds("Thu, 01 Jan 2099 00:00:00 GMT", None).isdigit()
    assert retry_after_in_seconds("Thu, 01 Jan 1970 00:00:00 GMT", None) == "0"


def test_sources_read_seconds_and_call_anything_else_unknown() -> None:
    assert retry_after_seconds({"retry-after": "300"}) == 300.0
    assert retry_after_seconds({"retry-after": "soon"}) is None
    assert retry_after_seconds({}) is None
