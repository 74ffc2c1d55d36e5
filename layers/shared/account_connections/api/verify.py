"""Administrators' routes: ``GET``/``HEAD``/``POST /verify``. No JWT: the link is the capability.

Pages are HTML by default; a JSON body to ``POST /verify`` gets a JSON answer (and JSON
problems). Refusals render here, not in each route: this router's exception handlers answer
the verification page's errors as HTML pages, and hand every other route's to the standard
RFC 7807 problem.
"""

from __future__ import annotations

import base64
import json
from typing import Annotated, Any
from urllib.parse import parse_qs

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter
from pydantic import ValidationError

from account_connections import wiring
from account_connections.api import pages
from account_connections.api.app import MAX_BODY_BYTES, MAX_JSON_DEPTH, TOO_DEEP, header, json_too_deep
from account_connections.api.problems import PROBLEM_JSON, problem, status_of, validation_problem
from account_connections.domain import errors
from account_connections.domain.connection import DecisionRequest
from account_connections.logic import approval
from account_connections.observability import logger
from account_connections.settings import DecisionSettings, load_settings

router = APIGatewayHttpRouter()

PATH = "/verify"
FORM_FIELDS = frozenset({"token", "decision", "authorizePaidTiers", "reason", "csrf", "accountProof"})
HTML_CONTENT: dict[str, Any] = {"content": {"text/html": {}}}
EITHER: dict[str, Any] = {"content": {"text/html": {}, PROBLEM_JSON: {}}}
PAGE_RESPONSES: dict[int, Any] = {
    200: {"description": "The confirmation page, or the page to paste a token.", **HTML_CONTENT},
    400: {
        "description": "A query parameter is not valid (the token given twice, say).",
        "content": {PROBLEM_JSON: {}},
    },
    404: {"description": "Unknown token: a page that says so.", **HTML_CONTENT},
    410: {
        "description": "Used, expired, cancelled, replaced or revoked: a page that says which.",
        **HTML_CONTENT,
    },
}

DECISION_RESPONSES: dict[int, Any] = {
    200: {"description": "Recorded.", "content": {"text/html": {}, "application/json": {}}},
    **{code: {"description": text, **EITHER} for code, text in {
        400: "A field is missing or not valid.",
        404: "Unknown token.",
        409: "Already decided, the window closed, or the form is out of date.",
        410: "Used, expired, cancelled, replaced or revoked.",
        413: "Body over 64 KiB.",
    }.items()},
}  # fmt: skip


def _settings() -> DecisionSettings:
    return load_settings(DecisionSettings)


def _html(status: int, body: str) -> Response[str]:
    return Response(
        status_code=status, content_type=pages.HTML, body=body, headers=dict(pages.SECURITY_HEADERS)
    )


def _is_json_request() -> bool:
    content_type = (header(router, "content-type") or "").split(";")[0].strip().lower()
    return content_type == "application/json" or content_type.endswith("+json")


def _is_head() -> bool:
    return router.current_event.http_method.upper() == "HEAD"


def _show(token: str | None) -> Response[str]:
    if token is None:
        return _html(200, pages.paste_token())
    required = _settings().require_account_proof
    view = approval.view_page(wiring.connections(), wiring.tokens(), token, require_account_proof=required)
    return _html(200, pages.confirmation(view))


@router.get(
    PATH,
    summary="The verification page (or, without a token, a page to paste one)",
    description="Shows what is asked with the decision form. Never changes state.",
    tags=["Administrators"],
    responses=PAGE_RESPONSES,
)
def show_page(
    token: Annotated[str | None, Query(description="The link's token, or the connection token.")] = None,
) -> Response[str]:
    return _show(token)


@router.head(
    PATH, summary="The verification page's headers", tags=["Administrators"], responses=PAGE_RESPONSES
)
def show_page_head(
    token: Annotated[str | None, Query(description="The link's token, or the connection token.")] = None,
) -> Response[str]:
    page = _show(token)
    return Response(
        status_code=page.status_code, content_type=pages.HTML, body="", headers=dict(pages.SECURITY_HEADERS)
    )


def _form(body: str) -> tuple[DecisionRequest, str | None]:
    """The HTML form's fields; each at most once, none unknown. Raises ``RequestValidationError``."""
    try:
        fields = parse_qs(body, keep_blank_values=True, max_num_fields=len(FORM_FIELDS) + 1)
    except ValueError as exc:  # more fields than the form has
        raise RequestValidationError(
            [{"loc": ("body",), "msg": "the form has too many fields", "type": "value_error"}]
        ) from exc
    problems = [
        {"loc": ("body", name), "msg": "unknown field" if name not in FORM_FIELDS else "given more than once",
         "type": "extra_forbidden" if name not in FORM_FIELDS else "value_error"}
        for name, values in fields.items()
        if name not in FORM_FIELDS or len(values) > 1
    ]  # fmt: skip
    if problems:
        raise RequestValidationError(problems)
    data: dict[str, Any] = {name: values[0] for name, values in fields.items()}
    csrf = data.pop("csrf", None)
    data["authorizePaidTiers"] = data.get("authorizePaidTiers", "") in ("true", "on", "1")
    if data.get("reason") == "":
        data.pop("reason")
    proof = data.pop("accountProof", "").strip()
    if proof:
        # The form carries the proof as the JSON text ``acctconn prove`` prints.
        invalid = {"loc": ("body", "accountProof"), "type": "value_error",
                   "msg": "must be the JSON that acctconn prove prints"}  # fmt: skip
        if json_too_deep(proof):
            raise RequestValidationError([{**invalid, "msg": TOO_DEEP}])
        try:
            data["accountProof"] = json.loads(proof)
        except (ValueError, RecursionError) as exc:
            raise RequestValidationError([invalid]) from exc
    return _validated(lambda: DecisionRequest.model_validate(data)), csrf


def _validated(build: Any) -> DecisionRequest:
    try:
        return build()  # type: ignore[no-any-return]
    except ValidationError as exc:
        raise RequestValidationError(
            [{**error, "loc": ("body", *error["loc"])} for error in exc.errors(include_url=False)]
        ) from exc


def _body() -> str:
    """The request body as text. Raises ``PayloadTooLarge`` and ``InvalidRequest``."""
    event = router.current_event
    raw = event.body or ""
    text = raw
    # The encoded size bounds the decoded one: refuse before decoding anything large.
    if event.is_base64_encoded and len(raw) <= MAX_BODY_BYTES * 4 // 3 + 4:
        try:
            text = base64.b64decode(raw, validate=True).decode("utf-8")
        except ValueError as exc:  # binascii.Error and UnicodeDecodeError are ValueErrors
            problem = [{"field": "body", "message": "must be UTF-8 text"}]
            raise errors.InvalidRequest("the body must be UTF-8 text", errors=problem) from exc
    if len(text.encode("utf-8", "surrogatepass")) > MAX_BODY_BYTES:
        raise errors.PayloadTooLarge(f"the body must be at most {MAX_BODY_BYTES} bytes")
    return text


@router.post(
    PATH,
    summary="Approve or reject a request",
    description="An HTML form (`token`, `decision`, `authorizePaidTiers`, `reason`, `csrf`) answers a result "
    "page; a JSON body with the same names (no `csrf`) answers JSON. Exactly one decision per request: "
    "a second one, concurrent or later, gets 409.",
    tags=["Administrators"],
    responses=DECISION_RESPONSES,
)  # fmt: skip
def decide() -> Response[Any]:
    settings = _settings()
    body = _body()
    ports = (
        wiring.connections(),
        wiring.tokens(),
        wiring.workflow(),
        wiring.proof_verifier(),
        wiring.mailer(),
    )
    required = settings.require_account_proof
    if _is_json_request():
        # Any JSON type, base64-encoded or not (``api.app`` checks plain application/json first).
        if json_too_deep(body):
            raise errors.InvalidRequest(
                f"the body nests deeper than {MAX_JSON_DEPTH} levels",
                errors=[{"field": "body", "message": TOO_DEEP}],
            )
        request = _validated(lambda: DecisionRequest.model_validate_json(body or "null"))
        outcome = approval.decide(*ports, request, csrf=None, form=False, require_account_proof=required)
        return Response(status_code=200, content_type="application/json",
                        body=outcome.model_dump_json(), headers=dict(pages.SECURITY_HEADERS))  # fmt: skip
    request, csrf = _form(body)
    outcome = approval.decide(*ports, request, csrf=csrf, form=True, require_account_proof=required)
    return _html(200, pages.result(outcome))


# ---- refusals ---------------------------------------------------------------------------------


def _wants_html() -> bool:
    return router.current_event.path == PATH and not _is_json_request()


def _refusal(status: int, title: str, detail: str, problem_response: Response[Any]) -> Response[Any]:
    logger.info("request refused", extra={"status": status, "path": router.current_event.path})
    if router.current_event.path != PATH:
        return problem_response
    if _is_json_request():
        problem_response.headers.update(pages.SECURITY_HEADERS)
        return problem_response
    body = "" if _is_head() else pages.refusal(status, title, detail)
    return _html(status, body)


# Registered per class, not on DomainError, so that they take precedence over the app's own
# DomainError handler; any other route keeps its RFC 7807 problem (see ``_refusal``).
_VERIFY_ERRORS: list[type[Exception]] = [
    errors.VerificationTokenNotFound,
    errors.VerificationTokenGone,
    errors.InvalidRequest,
    errors.ConnectionAlreadyDecided,
    errors.TaskAlreadyClosed,
    errors.DecisionFormStale,
    errors.DecisionNotReady,
    errors.PayloadTooLarge,
    errors.NotAuthorized,
    errors.AccountProofRefused,
    errors.DependencyUnavailable,
]


@router.exception_handler(_VERIFY_ERRORS)
def _domain_refusal(exc: errors.DomainError) -> Response[Any]:
    status = status_of(exc)
    field_errors = exc.errors if isinstance(exc, errors.InvalidRequest) else None
    return _refusal(status, exc.title, exc.detail, problem(status, exc.title, exc.detail, field_errors))


@router.exception_handler(RequestValidationError)
def _invalid_refusal(exc: RequestValidationError) -> Response[Any]:
    problem_response = validation_problem(exc)
    detail = str(json.loads(problem_response.body or "{}").get("detail", "the request is not valid"))
    return _refusal(400, "Invalid request", detail, problem_response)
