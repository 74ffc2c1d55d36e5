"""The API's own description: ``GET /openapi.json`` generated from every router's code, ``GET /docs``
a self-contained page that renders it (no scripts, no external assets), and ``GET /health``.
None of them needs an identity."""

from __future__ import annotations

import base64
import hashlib
import json
from functools import cache
from html import escape
from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter
from pydantic import BaseModel

router = APIGatewayHttpRouter()

TITLE = "Account connections"
VERSION = "1.0.0"
DESCRIPTION = (
    "Connect AWS accounts to a space. A requester asks to connect an account; the account's "
    "administrator approves or rejects by an emailed link; the service verifies the connection and "
    "attaches IAM roles. Errors are RFC 7807 `application/problem+json`; every response carries "
    "`X-Request-Id`."
)
BEARER = "bearerAuth"
# The routes that API Gateway serves without the JWT authorizer (template.yaml, `Authorizer: NONE`).
PUBLIC_PATHS = frozenset({"/verify", "/health", "/openapi.json", "/docs"})
DOC_CACHE_CONTROL = "public, max-age=300"

_STYLE = """
body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#1b1b1b}
h1{margin-bottom:0}code,.path{font-family:ui-monospace,monospace}
section.op{border:1px solid #ccd;border-radius:6px;padding:.5rem 1rem;margin:1rem 0}
.method{display:inline-block;min-width:4.5rem;font-weight:bold;text-transform:uppercase}
.get{color:#05628a}.post{color:#1a7f37}.put{color:#9a6700}.delete{color:#b42318}.head{color:#555}
table{border-collapse:collapse;width:100%;margin:.5rem 0}th,td{border:1px solid #dde;padding:.25rem .5rem;
text-align:left;vertical-align:top}th{background:#f4f4f8}.muted{color:#555}.public{font-size:.8rem;color:#1a7f37}
"""
_STYLE_HASH = base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()
DOCS_CSP = (
    f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
_METHODS = ("get", "head", "post", "put", "delete", "patch")


class Health(BaseModel):
    status: str


def routers() -> list[APIGatewayHttpRouter]:
    """Every router of the API, for the OpenAPI document (imported here, on use, so that each
    function imports only its own router)."""
    from account_connections.api.audit import router as audit
    from account_connections.api.connection_roles import router as connection_roles
    from account_connections.api.operator import router as operator
    from account_connections.api.requester import router as requester
    from account_connections.api.verify import router as verify

    return [requester, connection_roles, verify, operator, audit, router]


@cache
def openapi_document() -> dict[str, Any]:
    """The OpenAPI document of every route, generated from the routers (built once per process)."""
    from account_connections.api.app import create_app

    app = create_app(*routers())
    document: dict[str, Any] = json.loads(
        app.get_openapi_json_schema(
            title=TITLE,
            version=VERSION,
            description=DESCRIPTION,
            security_schemes={
                BEARER: HTTPBearer(bearerFormat="JWT", description="The JWT the identity provider issued.")
            },
            security=[{BEARER: []}],
        )
    )
    for path, item in document.get("paths", {}).items():
        for method, operation in item.items():
            if method not in _METHODS:
                continue
            if path in PUBLIC_PATHS:
                operation["security"] = []
            # Validation errors answer 400 problems here, not powertools' default 422 shape.
            responses = operation.get("responses", {})
            if "HTTPValidationError" in json.dumps(responses.get("422", {})):
                del responses["422"]
            # A 204 has no body (powertools describes Response[None] as a JSON null).
            responses.get("204", {}).pop("content", None)
    schemas = document.get("components", {}).get("schemas", {})
    if "HTTPValidationError" not in json.dumps(document.get("paths", {})):
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
    return document


# ---- the page -------------------------------------------------------------------------------


def _ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def _type(schema: dict[str, Any]) -> str:
    """A schema as short HTML: ``string (pattern …)``, ``array of <a>Model</a>``, ``A | null``."""
    if "$ref" in schema:
        name = escape(_ref_name(schema["$ref"]))
        return f'<a href="#schema-{name}">{name}</a>'
    for combinator in ("anyOf", "oneOf", "allOf"):
        if combinator in schema:
            return " | ".join(_type(part) for part in schema[combinator])
    if "enum" in schema:
        return "one of " + ", ".join(f"<code>{escape(str(value))}</code>" for value in schema["enum"])
    kind = schema.get("type", "any")
    if kind == "array":
        text = "array of " + _type(schema.get("items", {}))
    else:
        text = escape(str(kind))
    limits = [
        f"{escape(name)} {escape(json.dumps(schema[name]))}"
        for name in ("pattern", "minLength", "maxLength", "minimum", "maximum", "maxItems", "format")
        if name in schema
    ]
    return text + (f' <span class="muted">({"; ".join(limits)})</span>' if limits else "")


def _table(headings: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{heading}</th>" for heading in headings)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _parameter_row(parameter: dict[str, Any]) -> list[str]:
    return [
        f"<code>{escape(parameter['name'])}</code>",
        escape(parameter.get("in", "")),
        "yes" if parameter.get("required") else "no",
        _type(parameter.get("schema", {})),
        escape(parameter.get("description", "")),
    ]


def _operation(path: str, method: str, operation: dict[str, Any]) -> str:
    parts = [
        f'<section class="op" id="{escape(operation.get("operationId", ""))}">',
        f'<h3><span class="method {method}">{method}</span> <span class="path">{escape(path)}</span></h3>',
    ]
    if operation.get("security") == []:
        parts.append('<span class="public">no identity needed</span>')
    if operation.get("summary"):
        parts.append(f"<p><strong>{escape(operation['summary'])}</strong></p>")
    if operation.get("description"):
        parts.append(f"<p>{escape(operation['description'])}</p>")
    parameters = operation.get("parameters", [])
    if parameters:
        rows = [_parameter_row(parameter) for parameter in parameters]
        parts.append(_table(["parameter", "in", "required", "type", "description"], rows))
    body = operation.get("requestBody", {}).get("content", {})
    for media, content in body.items():
        parts.append(f"<p>Body <code>{escape(media)}</code>: {_type(content.get('schema', {}))}</p>")
    responses = operation.get("responses", {})
    rows = [
        [escape(code), escape(response.get("description", "")),
         ", ".join(f"<code>{escape(media)}</code> {_type(c.get('schema', {}))}"
                   for media, c in response.get("content", {}).items())]
        for code, response in sorted(responses.items())
    ]  # fmt: skip
    parts.append(_table(["status", "meaning", "content"], rows))
    parts.append("</section>")
    return "".join(parts)


def _schema(name: str, schema: dict[str, Any]) -> str:
    required = set(schema.get("required", []))
    rows = [
        [f"<code>{escape(field)}</code>", _type(spec), "yes" if field in required else "no",
         escape(spec.get("description", ""))]
        for field, spec in schema.get("properties", {}).items()
    ]  # fmt: skip
    described = f"<p>{escape(schema['description'])}</p>" if schema.get("description") else ""
    table = _table(["field", "type", "required", "description"], rows) if rows else f"<p>{_type(schema)}</p>"
    return f'<section id="schema-{escape(name)}"><h3>{escape(name)}</h3>{described}{table}</section>'


def render_docs(document: dict[str, Any]) -> str:
    """The OpenAPI document as one HTML page. Every text from the document is escaped."""
    info = document.get("info", {})
    title = escape(info.get("title", "API"))
    version = escape(info.get("version", ""))
    operations = "".join(
        _operation(path, method, operation)
        for path, item in document.get("paths", {}).items()
        for method, operation in item.items()
        if method in _METHODS
    )
    schemas = "".join(
        _schema(name, schema)
        for name, schema in sorted(document.get("components", {}).get("schemas", {}).items())
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{title}</title><style>{_STYLE}</style></head><body>"
        f'<h1>{title}</h1><p class="muted">version {version} · <a href="openapi.json">openapi.json</a></p>'
        f"<p>{escape(info.get('description', ''))}</p>"
        "<p>Send <code>Authorization: Bearer &lt;JWT&gt;</code> unless a route says it needs no identity.</p>"
        f"<h2>Routes</h2>{operations}<h2>Schemas</h2>{schemas}</body></html>"
    )


def _document_headers(csp: str | None = None) -> dict[str, str]:
    headers = {
        "Cache-Control": DOC_CACHE_CONTROL,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    }
    if csp:
        headers["Content-Security-Policy"] = csp
    return headers


# ---- routes -----------------------------------------------------------------------------------


@router.get(
    "/openapi.json",
    summary="This API's OpenAPI document",
    tags=["Documentation"],
    responses={200: {"description": "The OpenAPI 3 document.", "content": {"application/json": {}}}},
)
def get_openapi() -> Response[Any]:
    return Response(
        status_code=200,
        content_type="application/json",
        body=json.dumps(openapi_document()),
        headers=_document_headers(),
    )


@router.get(
    "/docs",
    summary="A readable page of this API's routes and schemas",
    tags=["Documentation"],
    responses={200: {"description": "An HTML page.", "content": {"text/html": {}}}},
)
def get_docs() -> Response[str]:
    return Response(
        status_code=200,
        content_type="text/html; charset=utf-8",
        body=render_docs(openapi_document()),
        headers=_document_headers(DOCS_CSP),
    )


@router.get("/health", summary="Liveness check", tags=["Documentation"])
def get_health() -> Health:
    return Health(status="ok")
