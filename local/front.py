"""The HTTP front: API Gateway HTTP API (payload 2.0) in front of the stack's functions.

Each request becomes the event AWS would send to the function that the template routes it to:
route matching as API Gateway does it (the most specific route wins), the JWT authorizer's
checks and claims, headers lowercased, cookies apart, repeated query parameters comma-joined,
binary bodies in base64. The function's answer is mapped back to HTTP as API Gateway maps it.
A method an HTTP API cannot route (``TRACE``, ``CONNECT``, anything else) answers 404, as API
Gateway does. Requests are logged by method and path, never with their query string (which can
carry a link's token).
"""

from __future__ import annotations

import base64
import errno
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from local.deployed import Route
from local.identity import TokenIssuer, render_claims
from local.lambda_runtime import LambdaRuntime
from local.moto_server import ACCOUNT_ID

log = logging.getLogger(__name__)

API_ID = "local"
# The front's listen backlog (socketserver's default is 5); moto's werkzeug server has 128.
LISTEN_BACKLOG = 1024
# The methods an HTTP API route can have (ANY is all of them); API Gateway answers others 404.
ROUTABLE_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
_TEXT_TYPES = ("text/", "application/json", "application/xml", "application/javascript",
               "application/x-www-form-urlencoded", "+json", "+xml")  # fmt: skip


def new_request_id() -> str:
    """An id shaped like API Gateway's (``JKJaXmPLvHcESHA=``)."""
    return base64.b64encode(uuid.uuid4().bytes[:10]).decode()


class PortInUse(RuntimeError):
    """The front's port is taken by another process."""


@dataclass
class Reply:
    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    request_id: str = field(default_factory=lambda: new_request_id())

    @classmethod
    def json(cls, status: int, value: Any) -> Reply:
        return cls(status, json.dumps(value).encode(), [("Content-Type", "application/json")])

    @classmethod
    def problem(cls, status: int, title: str, detail: str) -> Reply:
        """An RFC 7807 problem, shaped as the service's own."""
        body = {
            "type": f"https://httpstatuses.io/{status}",
            "title": title,
            "status": status,
            "detail": detail,
        }
        return cls(status, json.dumps(body).encode(), [("Content-Type", "application/problem+json")])


LocalRoute = Callable[[dict[str, str]], Reply]


@dataclass(frozen=True)
class MatchedRoute:
    route: Route
    path_parameters: dict[str, str]


class RouteTable:
    """The API's routes, matched as API Gateway matches them: literal segments beat
    ``{parameters}``, which beat greedy ``{proxy+}``; ``ANY`` after the exact method."""

    def __init__(self, routes: list[Route]) -> None:
        self.routes = sorted(routes, key=self._specificity, reverse=True)

    @staticmethod
    def _specificity(route: Route) -> tuple[int, int, int]:
        segments = route.path.strip("/").split("/")
        literal = sum(1 for segment in segments if not segment.startswith("{"))
        greedy = any(segment.endswith("+}") for segment in segments)
        return (0 if greedy else 1, literal, len(segments))

    def match(self, method: str, raw_path: str) -> MatchedRoute | None:
        if method not in ROUTABLE_METHODS:  # not even ANY routes TRACE
            return None
        segments = raw_path.strip("/").split("/") if raw_path.strip("/") else [""]
        for wanted in (method, "ANY"):
            for route in self.routes:
                if route.method != wanted:
                    continue
                parameters = self._match_path(route.path, segments)
                if parameters is not None:
                    return MatchedRoute(route, parameters)
        return None

    @staticmethod
    def _match_path(template: str, segments: list[str]) -> dict[str, str] | None:
        parts = template.strip("/").split("/") if template.strip("/") else [""]
        parameters: dict[str, str] = {}
        for index, part in enumerate(parts):
            if part.startswith("{") and part.endswith("+}"):
                rest = segments[index:]
                if not rest or rest == [""]:
                    return None
                parameters[part[1:-2]] = unquote("/".join(rest))
                return parameters
            if index >= len(segments):
                return None
            if part.startswith("{") and part.endswith("}"):
                if not segments[index]:
                    return None
                parameters[part[1:-1]] = unquote(segments[index])
            elif part != segments[index]:
                return None
        return parameters if len(parts) == len(segments) else None


def _is_text(content_type: str) -> bool:
    lowered = content_type.lower()
    return any(marker in lowered for marker in _TEXT_TYPES)


class Front:
    """The threaded HTTP server on 127.0.0.1:``port`` (0 picks a free port).

    The port is bound at construction, so a taken port is reported before anything else
    starts; requests are served once ``configure`` has given the routes and ``start`` is called.
    """

    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        self.table = RouteTable([])
        self.runtime: LambdaRuntime | None = None
        self.issuer: TokenIssuer | None = None
        self.local_routes: dict[str, LocalRoute] = {}
        try:
            self.server = _Server((host, port), _Handler)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise PortInUse(f"port {port} on {host} is already in use") from exc
            raise
        self.server.front = self
        self._thread: threading.Thread | None = None

    def configure(
        self,
        routes: list[Route],
        runtime: LambdaRuntime,
        issuer: TokenIssuer,
        local_routes: dict[str, LocalRoute],
    ) -> None:
        self.table = RouteTable(routes)
        self.runtime = runtime
        self.issuer = issuer
        self.local_routes = local_routes

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def start(self) -> None:
        self._thread = threading.Thread(target=self.server.serve_forever, name="front", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:  # shutdown() waits for serve_forever(), so only once started
            self.server.shutdown()
            self._thread.join(timeout=5)
        self.server.server_close()

    # ---- one request -------------------------------------------------------------------

    def handle(self, request: IncomingRequest) -> Reply:
        local = self.local_routes.get(request.path) if request.method in ("GET", "HEAD") else None
        if local is not None:
            return local(dict(parse_qsl(request.query, keep_blank_values=True)))
        matched = self.table.match(request.method, request.path)
        if matched is None:
            log.info("%s %s -> 404 (no route)", request.method, request.path)
            return Reply.json(404, {"message": "Not Found"})
        assert self.runtime is not None and self.issuer is not None, "configure() first"
        claims = None
        authorizer = matched.route.authorizer
        if authorizer is not None:
            header_name = authorizer.identity_source.removeprefix("$request.header.").lower()
            claims = self.issuer.verify(request.header(header_name), authorizer)
            if claims is None:
                log.info("%s %s -> 401 (JWT authorizer)", request.method, request.path)
                reply = Reply.json(401, {"message": "Unauthorized"})
                reply.headers.append(("WWW-Authenticate", "Bearer"))
                return reply
        event = build_event(request, matched, claims)
        request_id = event["requestContext"]["requestId"]
        result = self.runtime.invoke(matched.route.function_arn, event, request_id)
        if result.function_error:
            reply = Reply.json(500, {"message": "Internal Server Error"})
        else:
            reply = map_response(result.json())
        reply.request_id = request_id
        pool = self.runtime.pool(matched.route.function_arn)
        log.info(
            "%s %s -> %s%s (%s%s, %.0f ms)",
            request.method,
            request.path,
            reply.status,
            " function error" if result.function_error else "",
            pool.spec.logical_id if pool else "?",
            ", cold start" if result.cold_start else "",
            result.duration_ms,
        )
        return reply


@dataclass
class IncomingRequest:
    method: str
    path: str
    query: str
    headers: list[tuple[str, str]]
    body: bytes
    source_ip: str
    protocol: str

    def header(self, name: str) -> str | None:
        values = [value for key, value in self.headers if key.lower() == name]
        return ",".join(values) if values else None


def build_event(
    request: IncomingRequest, matched: MatchedRoute, claims: dict[str, Any] | None
) -> dict[str, Any]:
    """The payload 2.0 event API Gateway sends for this request."""
    headers: dict[str, str] = {}
    cookies: list[str] = []
    for key, value in request.headers:
        name = key.lower()
        if name == "cookie":
            cookies.extend(part.strip() for part in value.split(";") if part.strip())
            continue
        headers[name] = f"{headers[name]},{value}" if name in headers else value
    query: dict[str, str] = {}
    for key, value in parse_qsl(request.query, keep_blank_values=True):
        query[key] = f"{query[key]},{value}" if key in query else value
    now = datetime.now(UTC)
    host = headers.get("host", "")
    request_id = new_request_id()
    route = matched.route
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route.route_key,
        "rawPath": request.path,
        "rawQueryString": request.query,
        "headers": headers,
        "requestContext": {
            "accountId": ACCOUNT_ID,
            "apiId": API_ID,
            "domainName": host,
            "domainPrefix": host.split(".")[0].split(":")[0],
            "http": {
                "method": request.method,
                "path": request.path,
                "protocol": request.protocol,
                "sourceIp": request.source_ip,
                "userAgent": headers.get("user-agent", ""),
            },
            "requestId": request_id,
            "routeKey": route.route_key,
            "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000),
        },
        "isBase64Encoded": False,
    }
    if cookies:
        event["cookies"] = cookies
    if query:
        event["queryStringParameters"] = query
    if matched.path_parameters:
        event["pathParameters"] = matched.path_parameters
    if claims is not None:
        event["requestContext"]["authorizer"] = {"jwt": {"claims": render_claims(claims), "scopes": None}}
    if request.body:
        if _is_text(headers.get("content-type", "")):
            try:
                event["body"] = request.body.decode("utf-8")
            except UnicodeDecodeError:
                event["body"] = base64.b64encode(request.body).decode()
                event["isBase64Encoded"] = True
        else:
            event["body"] = base64.b64encode(request.body).decode()
            event["isBase64Encoded"] = True
    return event


def map_response(result: Any) -> Reply:
    """The function's answer as API Gateway (payload 2.0) turns it into HTTP."""
    if not isinstance(result, dict) or "statusCode" not in result:
        # No statusCode: API Gateway assumes 200 and returns the value as JSON.
        body = result if isinstance(result, str) else json.dumps(result)
        return Reply(200, body.encode(), [("Content-Type", "application/json")])
    headers: list[tuple[str, str]] = []
    for key, value in (result.get("headers") or {}).items():
        headers.append((key, str(value)))
    for key, values in (result.get("multiValueHeaders") or {}).items():
        headers.extend((key, str(value)) for value in values)
    headers.extend(("Set-Cookie", cookie) for cookie in result.get("cookies") or [])
    body = result.get("body") or ""
    data = (
        base64.b64decode(body)
        if result.get("isBase64Encoded")
        else str(body).encode("utf-8", "surrogatepass")
    )
    if not any(key.lower() == "content-type" for key, _ in headers) and data:
        headers.append(("Content-Type", "application/json"))
    return Reply(int(result["statusCode"]), data, headers)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = False  # a taken port must be reported, not shared
    # The listen backlog: connections the kernel completes before the accept loop takes them.
    # socketserver's default of 5 drops (or resets) a burst of concurrent connects while the
    # loop is busy starting handler threads; the kernel caps it at net.core.somaxconn.
    request_queue_size = LISTEN_BACKLOG
    front: Front


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    server_version = "local-stack"

    def _serve(self) -> None:
        started = time.monotonic()
        split = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        # What API Gateway adds to every request it forwards.
        headers = [
            (key, value)
            for key, value in self.headers.items()
            if key.lower() not in ("x-forwarded-proto", "x-forwarded-port", "x-forwarded-for")
        ]
        headers += [
            ("X-Forwarded-Proto", "http"),
            ("X-Forwarded-Port", str(self.server.server_port)),
            ("X-Forwarded-For", self.client_address[0]),
        ]
        if not any(key.lower() == "host" for key, _ in headers):
            headers.append(("Host", f"127.0.0.1:{self.server.server_port}"))
        request = IncomingRequest(
            method=self.command,
            path=split.path or "/",
            query=split.query,
            headers=headers,
            body=body,
            source_ip=self.client_address[0],
            protocol=self.request_version,
        )
        try:
            reply = self.server.front.handle(request)
        except Exception:
            log.exception("the front failed on %s %s", self.command, split.path)
            reply = Reply.json(500, {"message": "Internal Server Error"})
        self.send_response(reply.status)
        for key, value in reply.headers:
            if key.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(reply.body)))
        self.send_header("Apigw-Requestid", reply.request_id)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(reply.body)
        elapsed = (time.monotonic() - started) * 1000
        log.debug("%s %s %s in %.0f ms", self.command, request.path, reply.status, elapsed)

    def __getattr__(self, name: str) -> Any:
        """``do_<METHOD>`` for every method, so the front (not http.server's 501) answers them."""
        if name.startswith("do_"):
            return self._serve
        raise AttributeError(name)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        """Requests are logged once, by the front, with the function that served them."""
