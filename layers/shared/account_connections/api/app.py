"""The HTTP API's common machinery: the resolver factory, the request id header, body limits and
the caller's identity (problems are in ``api.problems``).

Each API function builds its resolver with ``create_app(router)``; the docs function builds one
with every router, so the OpenAPI document describes the whole API from the same code.
"""

from __future__ import annotations

import json
import re
from array import array
from itertools import accumulate
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter
from aws_lambda_powertools.utilities.typing import LambdaContext

from account_connections.api.problems import (
    PROBLEM_JSON,
    problem,
    problem_headers,
    status_of,
    validation_problem,
)
from account_connections.domain import errors
from account_connections.domain.access import Principal, principal_from_claims
from account_connections.domain.fields import SPACE_ID_PATTERN
from account_connections.observability import logger

MAX_BODY_BYTES = 64 * 1024
MAX_JSON_DEPTH = 32
REQUEST_ID_HEADER = "X-Request-Id"
TOO_DEEP = f"must not nest arrays and objects deeper than {MAX_JSON_DEPTH} levels"
# One JSON string (escapes included; an unterminated one runs to the end), and what is neither a
# string nor a bracket: the depth scan drops both inside the regex engine, then counts brackets.
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_DEPTH_STEPS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")  # +1 and -1 as signed bytes


# The path parameter every space-scoped route takes (requesters' and operators').
SpaceIdPath = Annotated[str, Path(pattern=SPACE_ID_PATTERN, description="The space's id.")]


def create_app(*routers: APIGatewayHttpRouter) -> APIGatewayHttpResolver:
    """A resolver with validation, the routers given, and every error as an RFC 7807 problem."""
    app = APIGatewayHttpResolver(enable_validation=True)
    for router in routers:
        app.include_router(router)

    @app.exception_handler(RequestValidationError)
    def _invalid(exc: RequestValidationError) -> Response:
        return validation_problem(exc)

    @app.exception_handler(RequestUnsupportedContentType)
    def _unsupported(_: RequestUnsupportedContentType) -> Response:
        return _unsupported_content_type()

    @app.exception_handler(errors.DomainError)
    def _domain(exc: errors.DomainError) -> Response:
        status = status_of(exc)
        field_errors = exc.errors if isinstance(exc, errors.InvalidRequest) else None
        logger.info("request refused", extra={"status": status, "error": type(exc).__name__})
        return problem(status, exc.title, exc.detail, field_errors, problem_headers(exc))

    @app.not_found
    def _not_found(_: Exception) -> Response:
        return problem(404, "Not found", "no such route")

    @app.exception_handler(Exception)
    def _unexpected(exc: Exception) -> Response:
        logger.exception("unexpected error")
        return problem(500, "Internal error", "the request failed; quote the request id when reporting it")

    return app


def _unsupported_content_type() -> Response:
    return problem(
        400,
        "Unsupported content type",
        "send the body as application/json",
        [{"field": "Content-Type", "message": "must be application/json"}],
    )


def _content_type(event: dict[str, Any]) -> str:
    """The media type of the body, lower case, without parameters."""
    headers = {key.lower(): value for key, value in (event.get("headers") or {}).items()}
    return str(headers.get("content-type", "")).split(";")[0].strip().lower()


def _check_body(event: dict[str, Any]) -> Response | None:
    """Refuse what validation would read wrongly: bodies over 64 KiB, non-JSON content types."""
    body = event.get("body")
    if body is None or body == "":
        return None
    if event.get("isBase64Encoded"):
        size = len(body) * 3 // 4
    else:
        size = len(body.encode("utf-8", "surrogatepass"))
    if size > MAX_BODY_BYTES:
        return problem(413, "Payload too large", f"the body must be at most {MAX_BODY_BYTES} bytes")
    content_type = _content_type(event)
    # Exactly application/json: the validation middleware reads no other type.
    if content_type != "application/json":
        return _unsupported_content_type()
    if event.get("isBase64Encoded"):
        return problem(400, "Invalid request", "the body must be UTF-8 JSON text",
                       [{"field": "body", "message": "must be JSON text"}])  # fmt: skip
    return None


def json_too_deep(text: str, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether ``text`` nests arrays and objects deeper than ``limit`` (brackets inside strings do
    not count). Run before any parser, and cheap (a few ms for 64 KiB: regexes, then a running sum
    in C): Python's JSON decoder recurses once per level and raises ``RecursionError``, not
    ``ValueError``, on a body of 60,000 ``[``."""
    brackets = _NOT_BRACKET.sub("", _JSON_STRING.sub("", text))
    if len(brackets) <= limit:
        return False
    steps = array("b", brackets.encode("ascii").translate(_DEPTH_STEPS))
    return max(accumulate(steps)) > limit


def _invalid_json(detail: str, message: str) -> Response:
    return problem(400, "Invalid request", detail, [{"field": "body", "message": message}])


def _unreadable_json(event: dict[str, Any]) -> Response | None:
    """A JSON body that Python cannot read at all (nested too deep; a number past its integer digit
    limit raises a plain ValueError the validation middleware does not expect) is a 400 here, not a
    500 there."""
    body = event.get("body")
    content_type = _content_type(event)
    if not body or event.get("isBase64Encoded") or content_type != "application/json":
        return None
    if json_too_deep(body):
        return _invalid_json(f"the body nests deeper than {MAX_JSON_DEPTH} levels", TOO_DEEP)
    try:
        json.loads(body)
    except (ValueError, RecursionError):
        return _invalid_json("the body is not valid JSON", "the body is not valid JSON")
    return None


def handle(
    app: APIGatewayHttpResolver, event: dict[str, Any], context: LambdaContext, *, check_body: bool = True
) -> dict[str, Any]:
    """Resolve one HTTP API event; every response carries the request id header."""
    request_id = str((event.get("requestContext") or {}).get("requestId") or "")
    refused = (_check_body(event) if check_body else None) or _unreadable_json(event)
    if refused is not None:
        result = _plain(refused)
    else:
        result = app.resolve(event, context)
    headers = result.setdefault("headers", {}) or {}
    headers[REQUEST_ID_HEADER] = request_id
    result["headers"] = headers
    logger.info("request handled", extra={"status": result.get("statusCode"), "path": event.get("rawPath")})
    return result


def _plain(response: Response) -> dict[str, Any]:
    return {
        "statusCode": response.status_code,
        "headers": {"Content-Type": response.headers.get("Content-Type", PROBLEM_JSON)},
        "body": response.body,
        "isBase64Encoded": False,
    }


# A resolver, or a router of one: both expose the current HTTP API event.
EventSource = APIGatewayHttpResolver | APIGatewayHttpRouter


def current_principal(app: EventSource, groups_claim: str) -> Principal:
    """The caller, from the claims API Gateway's JWT authorizer verified. Raises NotAuthenticated."""
    authorizer = (app.current_event.raw_event.get("requestContext") or {}).get("authorizer") or {}
    claims = (authorizer.get("jwt") or {}).get("claims")
    return principal_from_claims(claims, groups_claim)


def header(app: EventSource, name: str) -> str | None:
    headers = app.current_event.headers or {}
    lowered = name.lower()
    return next((value for key, value in headers.items() if key.lower() == lowered), None)
