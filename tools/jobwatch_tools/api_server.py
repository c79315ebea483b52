"""`jobwatch api serve`: the API handler behind a real HTTP socket on loopback.

Each request becomes the API Gateway REST proxy event the deployed function would get (method, path,
resource, path and query parameters in both single and multi-value forms, headers, body, base64 flag,
a request context with an identity), and the handler's proxy response is written back. So curl, a
pipeline's HTTP client or schemathesis exercise exactly the code `ApiFunction` runs, without AWS.
There is no IAM check here: it listens on 127.0.0.1 only.
"""

from __future__ import annotations

import base64
import re
import threading
import time
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]

MAX_READ_BYTES = 1024 * 1024
"""Bodies up to this size are read and handed on (the handler answers 413 above 64 KiB)."""
_TEXT_TYPES = re.compile(r"^(application/(json|[\w.+-]*\+json|x-www-form-urlencoded)|text/)")


def _route_matchers(routes: tuple[tuple[str, str], ...]) -> list[tuple[str, str, re.Pattern[str]]]:
    matchers = []
    for method, resource in routes:
        pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(resource))
        matchers.append((method, resource, re.compile(f"^{pattern}$")))
    return matchers


def build_event(
    method: str,
    raw_path: str,
    headers: list[tuple[str, str]],
    body: bytes,
    routes: tuple[tuple[str, str], ...],
    source_ip: str = "127.0.0.1",
) -> dict[str, Any]:
    """The REST proxy event for one request (`resource` is the matched route template, else the path)."""
    split = urlsplit(raw_path)
    path = unquote(split.path) or "/"
    multi_query = parse_qs(split.query, keep_blank_values=True)
    resource, path_parameters = _match_route(method, path, routes)
    single_headers, multi_headers = _header_forms(headers)
    text_body, is_base64 = _event_body(body, _content_type(single_headers))
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": single_headers or None,
        "multiValueHeaders": multi_headers or None,
        "queryStringParameters": {k: v[-1] for k, v in multi_query.items()} or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": path_parameters,
        "stageVariables": None,
        "requestContext": _request_context(
            method, path, resource, source_ip, single_headers.get("User-Agent")
        ),
        "body": text_body,
        "isBase64Encoded": is_base64,
    }


def _match_route(
    method: str, path: str, routes: tuple[tuple[str, str], ...]
) -> tuple[str, dict[str, str] | None]:
    """The route template and path parameters for `path`: the route of this method if one matches, else
    the first match of any method (so the handler answers 405), else the path itself (the handler 404s)."""
    hits = [(m, t, match) for m, t, regex in _route_matchers(routes) if (match := regex.match(path))]
    best = next((hit for hit in hits if hit[0] == method), hits[0] if hits else None)
    if best is None:
        return path, None
    return best[1], best[2].groupdict() or None


def _header_forms(headers: list[tuple[str, str]]) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Headers as API Gateway gives them: the last value per name, and every value per name."""
    single_headers: dict[str, str] = {}
    multi_headers: dict[str, list[str]] = {}
    for name, value in headers:
        single_headers[name] = value
        multi_headers.setdefault(name, []).append(value)
    return single_headers, multi_headers


def _content_type(single_headers: dict[str, str]) -> str:
    """The Content-Type header, found whatever case the client spelled its name in."""
    return single_headers.get("Content-Type") or next(
        (v for k, v in single_headers.items() if k.lower() == "content-type"), ""
    )


def _event_body(body: bytes, content_type: str) -> tuple[str | None, bool]:
    """The event's body and its base64 flag: text types as UTF-8 text, anything else (or invalid
    UTF-8) base64-encoded, as API Gateway does with binary media types."""
    if not body:
        return None, False
    if _TEXT_TYPES.match(content_type.lower()):
        try:
            return body.decode("utf-8"), False
        except UnicodeDecodeError:
            pass
    return base64.b64encode(body).decode("ascii"), True


def _request_context(
    method: str, path: str, resource: str, source_ip: str, user_agent: str | None
) -> dict[str, Any]:
    """The proxy event's `requestContext`: fresh request ids and time, a local stage and the caller."""
    now = time.time()
    return {
        "resourceId": "local",
        "resourcePath": resource,
        "httpMethod": method,
        "extendedRequestId": uuid.uuid4().hex,
        "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
        "path": path,
        "accountId": "000000000000",
        "protocol": "HTTP/1.1",
        "stage": "local",
        "domainPrefix": "localhost",
        "requestTimeEpoch": int(now * 1000),
        "requestId": str(uuid.uuid4()),
        "identity": {
            "sourceIp": source_ip,
            "userAgent": user_agent,
            "caller": None,
            "user": None,
            "userArn": None,
            "accountId": None,
            "accessKey": None,
            "cognitoIdentityPoolId": None,
            "cognitoIdentityId": None,
            "cognitoAuthenticationType": None,
            "cognitoAuthenticationProvider": None,
        },
        "domainName": "localhost",
        "apiId": "local",
    }


class _RequestHandler(BaseHTTPRequestHandler):
    server: ApiServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return  # the handler logs each request as JSON already

    def _serve(self) -> None:
        length = self._content_length()
        if length < 0 or length > MAX_READ_BYTES:
            self._write(
                413 if length > 0 else 400,
                {"Content-Type": "application/json"},
                b'{"message":"bad length","errors":[]}',
            )
            self.close_connection = True
            return
        body = self.rfile.read(length) if length else b""
        event = build_event(
            self.command,
            self.path,
            list(self.headers.items()),
            body,
            self.server.routes,
            self.client_address[0],
        )
        with self.server.lock:  # the Powertools resolver keeps the current event on the app object
            result = self.server.handler(event, None)
        self._write(int(result.get("statusCode", 500)), _response_headers(result), _response_payload(result))

    def _content_length(self) -> int:
        """The request's Content-Length (0 when absent), or -1 when it is not a number."""
        try:
            return int(self.headers.get("Content-Length") or 0)
        except ValueError:
            return -1

    def _write(self, status: int, headers: dict[str, str], payload: bytes) -> None:
        self.send_response(status)
        for name, value in headers.items():
            if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def __getattr__(self, name: str) -> Any:
        """Every method (`do_GET`, `do_TRACE`, `do_QUERY`...) goes to the handler, which 404s the unknown."""
        if name.startswith("do_"):
            return self._serve
        raise AttributeError(name)


def _response_headers(result: dict[str, Any]) -> dict[str, str]:
    """A proxy response's headers: multi-value ones joined with commas, single-value ones winning."""
    headers: dict[str, str] = {}
    for name, values in (result.get("multiValueHeaders") or {}).items():
        headers[name] = ", ".join(str(v) for v in values)
    headers.update({k: str(v) for k, v in (result.get("headers") or {}).items()})
    return headers


def _response_payload(result: dict[str, Any]) -> bytes:
    """A proxy response's body as bytes (decoded when the handler marked it base64)."""
    raw = result.get("body") or ""
    return base64.b64decode(raw) if result.get("isBase64Encoded") else str(raw).encode("utf-8")


class ApiServer(ThreadingHTTPServer):
    """A loopback HTTP server in front of a REST-proxy Lambda handler."""

    daemon_threads = True

    def __init__(self, handler: Handler, routes: tuple[tuple[str, str], ...], port: int = 0) -> None:
        super().__init__(("127.0.0.1", port), _RequestHandler)
        self.handler = handler
        self.routes = routes
        self.lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> ApiServer:
        """Serve on a background thread (tests, the demo); `stop()` ends it."""
        self._thread = threading.Thread(target=self.serve_forever, name="jobwatch-api", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)


def serve(port: int = 8080, *, ready: Callable[[str], None] | None = None) -> int:
    """`jobwatch api serve`: block serving the real handler until interrupted."""
    from jobwatch.api.routes import ROUTES
    from jobwatch_tools.local import api_handler

    server = ApiServer(api_handler, ROUTES, port)
    message = f"jobwatch API listening on {server.url} (Ctrl-C stops)"
    (ready or (lambda text: print(text, flush=True)))(message)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        return 130
    finally:
        server.server_close()
    return 0
