"""The one decoder every source and listing uses: duplicated keys, nesting depth, encodings.

The depth check reads the bracket skeleton of the text instead of walking decoded objects (cheaper);
a property test holds it to the plain recursive definition on arbitrary JSON, strings full of
brackets, quotes and backslashes included.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from source_testkit import depth_of, nested

from jobwatch.domain.errors import PollError, PollErrorKind
from jobwatch.sources.base import MAX_JSON_DEPTH, HttpResponse, decode_json, nests_deeper_than

TRICKY_TEXT = st.text(alphabet=st.sampled_from(list('"\\[]{}:,a é\u2028\U0001f600')), max_size=8)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | TRICKY_TEXT,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(TRICKY_TEXT, children, max_size=3),
    max_leaves=25,
)


@settings(max_examples=400, deadline=None)
@given(value=JSON_VALUES, ascii_only=st.booleans(), spaced=st.booleans())
def test_the_skeleton_walk_agrees_with_the_recursive_depth(
    value: Any, ascii_only: bool, spaced: bool
) -> None:
    text = json.dumps(value, ensure_ascii=ascii_only, separators=(", ", ": ") if spaced else (",", ":"))
    depth = depth_of(value)
    for limit in range(8):
        assert nests_deeper_than(text.encode(), limit) is (depth > limit), (text, depth, limit)


def _decode(raw: bytes) -> Any:
    return decode_json(HttpResponse(200, raw, {"content-type": "application/json"}))


def _error(raw: bytes) -> PollError:
    with pytest.raises(PollError) as info:
        _decode(raw)
    return info.value


def test_strings_that_look_like_nesting_are_not_nesting() -> None:
    brackets = "[" * 40 + '\\"{' * 40
    body = {"status": "SUCCESS", "note": brackets, "list": [brackets] * 40}
    assert _decode(json.dumps(body).encode()) == body


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "utf-32-le"])
def test_every_json_encoding_is_checked_alike(encoding: str) -> None:
    fine = json.dumps({"status": "SUCCESS", "x": nested(MAX_JSON_DEPTH - 1)})
    assert _decode(fine.encode(encoding))["status"] == "SUCCESS"
    deep = json.dumps({"status": "SUCCESS", "x": nested(MAX_JSON_DEPTH)})
    assert _error(deep.encode(encoding)).kind is PollErrorKind.TOO_DEEP
    doubled = '{"status": "FAILED", "status": "SUCCESS"}'
    assert _error(doubled.encode(encoding)).kind is PollErrorKind.INVALID_BODY


def test_a_duplicate_names_the_first_key_seen_twice() -> None:
    error = _error(b'{"a": 1, "b": {"c": 1, "d": 2, "c": 3}, "a": 2}')
    assert (error.kind, error.message) == (
        PollErrorKind.INVALID_BODY,
        "body names the key 'c' twice in one object",
    )
    assert _decode(b'{"a": {"k": 1}, "b": {"k": 2}}') == {"a": {"k": 1}, "b": {"k": 2}}  # per object


def test_keys_that_differ_only_by_escaping_are_the_same_key() -> None:
    assert (
        _error(b'{"status": 1, "st\\u0061tus": 2}').message
        == "body names the key 'status' twice in one object"
    )


def test_recursion_in_the_parser_is_too_deep_not_invalid() -> None:
    for raw in (b"[" * 100_000, b'{"a":' * 100_000, b'[{"a":' * 50_000):
        error = _error(raw)
        assert error.kind is PollErrorKind.TOO_DEEP
        assert error.message == f"body nests deeper than {MAX_JSON_DEPTH} levels; no status response does"
