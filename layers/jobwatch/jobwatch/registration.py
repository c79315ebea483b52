"""Validation of job registrations: one code path for the CLI (and later the HTTP API).

A refused registration raises RegistrationError with a message naming the field, and writes nothing.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pydantic import ValidationError

from jobwatch.errors import RegistrationError
from jobwatch.model import JobSpec
from jobwatch.sources import UnknownSourceError, get_source, source_names

_SECRET_NAME = re.compile(r"^[A-Za-z0-9/_+=.@:-]{1,2048}$")
_LABEL_KEY = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_JOB_ID_MAX = 512


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def normalize_endpoint(url: str, *, allow_http_loopback: bool) -> str:
    """https only; plain http only for loopback hosts and only when explicitly allowed."""
    text = url.strip()
    parts = urlsplit(text)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise RegistrationError(f"endpoint {url!r} must be an absolute https:// URL")
    if parts.username or parts.password:
        raise RegistrationError("endpoint must not embed credentials; store the API key in Secrets Manager")
    if parts.query or parts.fragment:
        raise RegistrationError("endpoint must not carry a query string or fragment")
    if parts.scheme == "http":
        if not _is_loopback(parts.hostname):
            raise RegistrationError(
                f"endpoint {url!r} refused: plain http is only allowed for loopback addresses"
            )
        if not allow_http_loopback:
            raise RegistrationError(
                f"endpoint {url!r} refused: plain http needs JOBWATCH_ALLOW_HTTP_LOOPBACK=true"
            )
    return urlunsplit((parts.scheme, parts.netloc.lower(), parts.path.rstrip("/"), "", ""))


def build_spec(fields: Mapping[str, Any], *, allow_http_loopback: bool) -> JobSpec:
    """Validate raw registration fields (snake_case or camelCase) into a JobSpec."""
    source_name = fields.get("source")
    if not source_name:
        raise RegistrationError(f"missing field 'source' (one of: {', '.join(source_names())})")
    try:
        source = get_source(str(source_name))
    except UnknownSourceError as exc:
        raise RegistrationError(str(exc)) from None
    try:
        spec = JobSpec.model_validate(dict(fields))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'body'}: {err['msg']}" for err in exc.errors()
        )
        raise RegistrationError(f"invalid registration: {problems}") from None
    if not spec.job_id.strip() or len(spec.job_id) > _JOB_ID_MAX:
        raise RegistrationError(f"missing or oversized field 'jobId' (1..{_JOB_ID_MAX} characters)")
    for name in source.required_fields:
        if not getattr(spec, name):
            flag = name.replace("_", "-")
            raise RegistrationError(f"source {spec.source!r} needs --{flag} ({name})")
    if spec.secret_name is not None and not _SECRET_NAME.match(spec.secret_name):
        raise RegistrationError("secret name has characters Secrets Manager does not allow")
    for key in spec.labels:
        if not _LABEL_KEY.match(key):
            raise RegistrationError(f"label key {key!r} must match {_LABEL_KEY.pattern}")
    endpoint = normalize_endpoint(spec.endpoint, allow_http_loopback=allow_http_loopback)
    return spec.model_copy(update={"endpoint": endpoint, "job_id": spec.job_id.strip()})


def parse_pairs(pairs: list[str] | None, what: str) -> dict[str, str]:
    """`k=v` command-line pairs into a dict; a pair without `=` is an error, not silently dropped."""
    result: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise RegistrationError(f"{what} {pair!r} must look like key=value")
        result[key.strip()] = value.strip()
    return result
