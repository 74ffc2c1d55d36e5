"""RFC 7807 problems: the one HTTP status of each domain error, the problem response, the
validation problem naming each field, and what a route's ``responses=`` says of its refusals."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from pydantic import Field

from account_connections.domain import errors
from account_connections.domain.fields import Model

PROBLEM_JSON = "application/problem+json"

# What a route's `responses=` says about its refusals: every one is an RFC 7807 problem.
PROBLEM_CONTENT: dict[str, Any] = {"content": {PROBLEM_JSON: {}}}


def problem_responses(descriptions: dict[int, str]) -> dict[int, Any]:
    """``{404: "No such space."}`` -> the OpenAPI responses of those problems."""
    return {code: {"description": text, **PROBLEM_CONTENT} for code, text in descriptions.items()}


class Unauthorized(Model):
    """What API Gateway's JWT authorizer answers to a request without a valid bearer token."""

    message: str = Field(description="Always `Unauthorized`.", examples=["Unauthorized"])


# Behind the JWT authorizer a 401 never reaches a function: API Gateway answers it, with its own
# plain JSON body, not an RFC 7807 problem.
UNAUTHORIZED: dict[int, Any] = {401: {
    "description": "No valid bearer token: API Gateway's JWT authorizer answers, before any function runs.",
    "content": {"application/json": {"model": Unauthorized}},
}}  # fmt: skip


def jwt_route_responses(descriptions: dict[int, str]) -> dict[int, Any]:
    """The refusals of a route behind the JWT authorizer: its problems and the authorizer's 401."""
    return dict(sorted({**problem_responses(descriptions), **UNAUTHORIZED}.items()))


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
    errors.RegistryConflict: 409,
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
    errors.TooManyLinks: 429,
    errors.TooManyRoles: 409,
}


def status_of(exc: errors.DomainError) -> int:
    """The status of ``exc``'s class, else of its nearest mapped base class (400 if none)."""
    exact = STATUS_OF.get(type(exc))
    if exact is not None:
        return exact
    return next((code for cls, code in STATUS_OF.items() if isinstance(exc, cls)), 400)


def problem_headers(exc: errors.DomainError) -> dict[str, str]:
    """What a refusal says besides its body: when to retry a rate-limited link (RFC 9110 Retry-After)."""
    if isinstance(exc, errors.TooManyLinks) and exc.retry_after is not None:
        return {"Retry-After": str(exc.retry_after)}
    return {}


def problem(
    status: int,
    title: str,
    detail: str,
    field_errors: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    body: dict[str, Any] = {
        "type": f"https://httpstatuses.io/{status}",
        "title": title,
        "status": status,
        "detail": detail,
    }
    if field_errors is not None:
        body["errors"] = field_errors
    return Response(status_code=status, content_type=PROBLEM_JSON, body=json.dumps(body), headers=headers)


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
