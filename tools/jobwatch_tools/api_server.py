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
    hits = [(m, t, match) for m, t, regex in _route_matchers(routes) if (match := regex.match(path))]
    best = next((hit for hit in hits if hit[0] == method), hits[0] if hits else None)
    resource, path_parameters = (best[1], best[2].groupdict() or None) if best else (path, None)
    single_headers: dict[str, str] = {}
    multi_headers: dict[str, list[str]] = {}
    for name, value in headers:
        single_headers[name] = value
        multi_headers.setdefault(name, []).append(value)
    content_type = single_headers.get("Content-Type") or next(
        (v for k, v in single_headers.items() if k.lower() == "content-type"), ""
    )
    is_text = not body or bool(_TEXT_TYPES.match(content_type.lower()))
    if is_text:
        try:
            text_body: str | None = body.decode("utf-8") if body else None
        except UnicodeDecodeError:
            is_text = False
    if not is_text:
        text_body = base64.b64encode(body).decode("ascii")
    now = time.time()
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
        "requestContext": {
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
                "userAgent": single_headers.get("User-Agent"),
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
        },
        "body": text_body,
        "isBase64Encoded": not is_text,
    }


class _RequestHandler(BaseHTTPRequestHandler):
    server: ApiServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return  # the handler logs each request as JSON already

    def _serve(self) -> None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
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
        headers: dict[str, str] = {}
        for name, values in (result.get("multiValueHeaders") or {}).items():
            headers[name] = ", ".join(str(v) for v in values)
        headers.update({k: str(v) for k, v in (result.get("headers") or {}).items()})
        raw = result.get("body") or ""
        payload = base64.b64decode(raw) if result.get("isBase64Encoded") else str(raw).encode("utf-8")
        self._write(int(result.get("statusCode", 500)), headers, payload)

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
    from jobwatch.api import routes as api
    from jobwatch.entrypoints.api import handle

    server = ApiServer(handle, api.ROUTES, port)
    message = f"jobwatch API listening on {server.url} (Ctrl-C stops)"
    (ready or (lambda text: print(text, flush=True)))(message)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        return 130
    finally:
        server.server_close()
    return 0
