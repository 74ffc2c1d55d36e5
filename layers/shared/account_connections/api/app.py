"""The HTTP API's common machinery: the resolver factory, RFC 7807 problems, the request id
header, body limits and the caller's identity.

Each API function builds its resolver with ``create_app(router)``; the docs function builds one
with every router, so the OpenAPI document describes the whole API from the same code.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter
from aws_lambda_powertools.utilities.typing import LambdaContext

from account_connections import errors
from account_connections.authz import Principal, principal_from_claims
from account_connections.models import SPACE_ID_PATTERN
from account_connections.observability import logger

MAX_BODY_BYTES = 64 * 1024
REQUEST_ID_HEADER = "X-Request-Id"
PROBLEM_JSON = "application/problem+json"

# What a route's `responses=` says about its refusals: every one is an RFC 7807 problem.
PROBLEM_CONTENT: dict[str, Any] = {"content": {PROBLEM_JSON: {}}}


# The path parameter every space-scoped route takes (requesters' and operators').
SpaceIdPath = Annotated[str, Path(pattern=SPACE_ID_PATTERN, description="The space's id.")]


def problem_responses(descriptions: dict[int, str]) -> dict[int, Any]:
    """``{404: "No such space."}`` -> the OpenAPI responses of those problems."""
    return {code: {"description": text, **PROBLEM_CONTENT} for code, text in descriptions.items()}


# One HTTP status for each domain error: the only place where errors become HTTP.
STATUS_OF: dict[type[errors.DomainError], int] = {
    errors.InvalidRequest: 400,
    errors.NotAuthenticated: 401,
    errors.NotAuthorized: 403,
    errors.SpaceNotFound: 404,
    errors.ConnectionNotFound: 404,
    errors.MemberNotFound: 404,
    errors.ApproverNotFound: 404,
    errors.RoleNotFound: 404,
    errors.VerificationTokenNotFound: 404,
    errors.ConnectionAlreadyLive: 409,
    errors.ConnectionAlreadyDecided: 409,
    errors.IdempotencyKeyReused: 409,
    errors.IdempotencyInProgress: 409,
    errors.TaskAlreadyClosed: 409,
    errors.VerificationTokenGone: 410,
    errors.ApproverNotRegistered: 422,
    errors.RoleCheckFailed: 422,
    errors.VerificationFailed: 422,
    errors.WorkflowUnavailable: 503,
    errors.DecisionFormStale: 409,
    errors.DecisionNotReady: 409,
    errors.DependencyUnavailable: 503,
    errors.PayloadTooLarge: 413,
}


def problem(
    status: int, title: str, detail: str, field_errors: list[dict[str, str]] | None = None
) -> Response:
    body: dict[str, Any] = {
        "type": f"https://httpstatuses.io/{status}",
        "title": title,
        "status": status,
        "detail": detail,
    }
    if field_errors is not None:
        body["errors"] = field_errors
    return Response(status_code=status, content_type=PROBLEM_JSON, body=json.dumps(body))


def _field_name(location: tuple[Any, ...]) -> str:
    """``("body", "roleArns", 0)`` -> ``roleArns[0]``; a query or header parameter by its name."""
    parts = list(location)
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    name = ""
    for part in parts:
        if isinstance(part, int):
            name += f"[{part}]"
        elif not str(part).startswith("function-"):
            name += f".{part}" if name else str(part)
    return name or "body"


def _error_field(error: dict[str, Any]) -> str:
    # A JSON syntax error's location is a character offset, not a field.
    return "body" if error.get("type") == "json_invalid" else _field_name(tuple(error.get("loc", ())))


def _validation_message(error: dict[str, Any]) -> str:
    if error.get("type") == "extra_forbidden":
        return "unknown field"
    if error.get("type") == "json_invalid":
        return "the body is not valid JSON"
    if error.get("type") == "missing":
        return "is required"
    message = str(error.get("msg", "is not valid"))
    return message.removeprefix("Value error, ")


def validation_problem(exc: RequestValidationError) -> Response:
    field_errors = [
        {"field": _error_field(error), "message": _validation_message(error)} for error in exc.errors()
    ]
    names = ", ".join(sorted({error["field"] for error in field_errors}))
    return problem(400, "Invalid request", f"the request is not valid: {names}", field_errors)


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
        status = next((code for cls, code in STATUS_OF.items() if type(exc) is cls), None)
        if status is None:
            status = next((code for cls, code in STATUS_OF.items() if isinstance(exc, cls)), 400)
        field_errors = exc.errors if isinstance(exc, errors.InvalidRequest) else None
        logger.info("request refused", extra={"status": status, "error": type(exc).__name__})
        return problem(status, exc.title, exc.detail, field_errors)

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


def _unreadable_json(event: dict[str, Any]) -> Response | None:
    """A JSON body that Python cannot read at all (a number past its integer digit limit raises a
    plain ValueError the validation middleware does not expect) is a 400 here, not a 500 there."""
    body = event.get("body")
    content_type = _content_type(event)
    if not body or event.get("isBase64Encoded") or content_type != "application/json":
        return None
    try:
        json.loads(body)
    except ValueError:
        return problem(400, "Invalid request", "the body is not valid JSON",
                       [{"field": "body", "message": "the body is not valid JSON"}])  # fmt: skip
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


def current_principal(app: APIGatewayHttpResolver, groups_claim: str) -> Principal:
    """The caller, from the claims API Gateway's JWT authorizer verified. Raises NotAuthenticated."""
    authorizer = (app.current_event.raw_event.get("requestContext") or {}).get("authorizer") or {}
    claims = (authorizer.get("jwt") or {}).get("claims")
    return principal_from_claims(claims, groups_claim)


def header(app: APIGatewayHttpResolver, name: str) -> str | None:
    headers = app.current_event.headers or {}
    lowered = name.lower()
    return next((value for key, value in headers.items() if key.lower() == lowered), None)
