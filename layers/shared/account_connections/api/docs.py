"""The API's own description: ``GET /openapi.json`` generated from every router's code, ``GET /docs``
Swagger UI on it (its files served from this function, ``GET /docs/{asset}``, under a policy that
allows nothing else), and ``GET /health``. None of them needs an identity."""

from __future__ import annotations

import gzip
import hashlib
import json
from dataclasses import dataclass
from functools import cache, cached_property
from pathlib import Path
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path as PathParameter
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from account_connections.api.problems import problem, problem_responses
from account_connections.domain.fields import Model
from account_connections.observability import logger

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
PUBLIC_PATHS = frozenset({"/verify", "/health", "/openapi.json", "/docs", "/docs/{asset}"})
DOC_CACHE_CONTROL = "public, max-age=300"

_METHODS = ("get", "head", "post", "put", "delete", "patch")


class Health(Model):
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


# The document as built before deployment (``make openapi``, which ``make build`` and ``make run``
# run first): functions/serve_docs/openapi.json, beside the handler, so that the first request
# reads a file instead of importing every router and building every schema (~300 ms of a cold
# start). tests/integration/test_docs_api.py holds it equal to what ``generate_document()`` makes.
DOCUMENT_FILE = "openapi.json"
_document_dir: list[Path] = []


def serve_document_from(folder: Path) -> None:
    """Serve the document built into ``folder`` (the docs function's own: its app.py says so)."""
    _document_dir[:] = [folder]


@cache
def openapi_text() -> str:
    """The document as served: the built file when there is one, else generated now (a
    deployment built without ``make build``: slower on the first request, the same answer)."""
    for folder in _document_dir:
        built = folder / DOCUMENT_FILE
        if built.is_file():
            return built.read_text(encoding="utf-8")
    logger.warning(
        "no built OpenAPI document beside the handler: generating it", extra={"file": DOCUMENT_FILE}
    )
    return document_text(generate_document())


def document_text(document: dict[str, Any]) -> str:
    """The file's form: indented, keys in the routers' order, ending with a newline."""
    return json.dumps(document, indent=1, ensure_ascii=False) + "\n"


def write_document(path: str | Path) -> None:
    """Build the document from the routers into ``path`` (``make openapi``)."""
    Path(path).write_text(document_text(generate_document()), encoding="utf-8")


def generate_document() -> dict[str, Any]:
    """The OpenAPI document of every route, generated from the routers."""
    # Imported here, as the routers are: powertools' OpenAPI models (~100 ms) are for building
    # the document, which a request only reads.
    from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer

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


# ---- the page: Swagger UI, served by this function ------------------------------------------

# Our initializer, a file rather than an inline script so that the policy needs no 'unsafe-inline'.
INIT_JS = """"use strict";
// Swagger UI for this API: the document beside this page (relative, so a stage path is kept),
// "Try it out" on every method, nothing sent anywhere else (no validator badge), no token kept.
window.ui = SwaggerUIBundle({
  url: "openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  displayRequestDuration: true,
  validatorUrl: null,
  persistAuthorization: false,
  queryConfigEnabled: false
});
"""
# The only names /docs/{asset} serves, with their types: Swagger UI's own files, from the pinned
# swagger-ui-bundle-v2 (functions/serve_docs/requirements.txt), and init.js.
_VENDOR_ASSETS = {
    "swagger-ui.css": "text/css; charset=utf-8",
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
}
ASSET_TYPES = {**_VENDOR_ASSETS, "init.js": "text/javascript; charset=utf-8"}
# The page is HTML that names its assets by content hash (?v=), so an asset can be cached a day
# and a new release is fetched at once.
ASSET_CACHE_CONTROL = "public, max-age=86400"
# Scripts, styles and requests (the document, "Try it out") from this origin only; images only as the
# stylesheet's data: icons. Swagger UI sets styles through the DOM, which style-src does not govern,
# so no 'unsafe-inline' (tests/e2e/test_swagger_ui.py sees no violation).
DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


@dataclass(frozen=True)
class Asset:
    body: bytes
    version: str  # the first hex digits of its SHA-256

    @cached_property
    def gzipped(self) -> bytes:
        return gzip.compress(self.body, compresslevel=6, mtime=0)  # level 9: 0.3% smaller, 40% slower


@cache
def swagger_ui_version() -> str:
    """The version of the Swagger UI the package ships (its folder is ``vendor/swagger-ui-<version>``)."""
    from swagger_ui_bundle import swagger_ui_path

    return Path(swagger_ui_path).name.removeprefix("swagger-ui-")


@cache
def load_asset(name: str) -> Asset | None:
    """One file of the page, read once per process; None for any name not in ``ASSET_TYPES``."""
    if name not in ASSET_TYPES:
        return None
    if name in _VENDOR_ASSETS:
        from swagger_ui_bundle import swagger_ui_path

        body = (Path(swagger_ui_path) / name).read_bytes()
    else:
        body = INIT_JS.encode()
    return Asset(body, hashlib.sha256(body).hexdigest()[:12])


def _href(name: str) -> str:
    found = load_asset(name)
    assert found is not None
    # Relative to /docs: docs/<name>, so that a stage path (/prod/docs) is kept.
    return f"docs/{name}?v={found.version}"


@cache
def docs_page() -> str:
    """The HTML page: Swagger UI's stylesheet and bundle, then our initializer; nothing inline."""
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{TITLE} API</title>"
        '<link rel="icon" href="data:,">'  # no favicon request
        f'<link rel="stylesheet" href="{_href("swagger-ui.css")}">'
        '</head><body><div id="swagger-ui"></div>'
        f'<script src="{_href("swagger-ui-bundle.js")}"></script>'
        f'<script src="{_href("init.js")}"></script>'
        "</body></html>"
    )


def _accepts_gzip(accept_encoding: str | None) -> bool:
    return "gzip" in (accept_encoding or "").lower()


def _document_headers(csp: str | None = None, cache_control: str = DOC_CACHE_CONTROL) -> dict[str, str]:
    headers = {
        "Cache-Control": cache_control,
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
        body=openapi_text(),
        headers=_document_headers(),
    )


@router.get(
    "/docs",
    summary='This API\'s reference in Swagger UI, with "Try it out"',
    tags=["Documentation"],
    responses={200: {"description": "An HTML page.", "content": {"text/html": {}}}},
)
def get_docs() -> Response[str]:
    return Response(
        status_code=200,
        content_type="text/html; charset=utf-8",
        body=docs_page(),
        headers=_document_headers(DOCS_CSP),
    )


@router.get(
    "/docs/<asset>",
    summary="A file of the Swagger UI page",
    tags=["Documentation"],
    responses={
        200: {
            "description": "The file, gzip-encoded when the request accepts it.",
            "content": {"text/css": {}, "text/javascript": {}},
        },
        **problem_responses({404: "Not one of the page's files."}),
    },
    # A file, not a model: response validation would serialize gzipped bytes as text, and the one
    # parameter is a plain string, checked against the allow-list.
    enable_validation=False,
)
def get_docs_asset(
    asset: Annotated[str, PathParameter(description=f"One of {', '.join(ASSET_TYPES)}.")],
) -> Response[str | bytes]:
    found = load_asset(asset)
    if found is None:
        return problem(404, "Not found", "no such file of the documentation page")
    headers = {**_document_headers(cache_control=ASSET_CACHE_CONTROL), "Vary": "Accept-Encoding"}
    body: str | bytes = found.body.decode()
    if _accepts_gzip(router.current_event.headers.get("accept-encoding")):
        headers["Content-Encoding"] = "gzip"
        body = found.gzipped
    # Bytes go to API Gateway base64-encoded (isBase64Encoded), which it decodes: 1.5 MB of JavaScript
    # is about 0.4 MB gzipped, well under Lambda's 6 MB response limit either way.
    return Response(status_code=200, content_type=ASSET_TYPES[asset], body=body, headers=headers)


@router.get("/health", summary="Liveness check", tags=["Documentation"])
def get_health() -> Health:
    return Health(status="ok")
