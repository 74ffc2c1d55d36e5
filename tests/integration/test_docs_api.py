"""functions/serve_docs: the OpenAPI document generated from every router, Swagger UI on it (the page
and its files, from this origin only), and the health check, none of which needs an identity."""

from __future__ import annotations

import base64
import gzip
import re
from pathlib import Path
from typing import Any

import pytest

from account_connections.api import docs
from account_connections.api.docs import (
    ASSET_CACHE_CONTROL,
    ASSET_TYPES,
    DOCS_CSP,
    PUBLIC_PATHS,
    document_text,
    generate_document,
    load_asset,
    swagger_ui_version,
)
from tests.support import FakeContext, Reply, http_event, invoke, load_handler, resource

FUNCTION = "serve_docs"


def template_routes() -> dict[tuple[str, str], bool]:
    """Every route of template.yaml's HTTP API, and whether it needs the JWT."""
    routes = {}
    for spec in (resource(logical_id) for logical_id in resource_ids()):
        for event in spec["Properties"].get("Events", {}).values():
            if event["Type"] == "HttpApi":
                props = event["Properties"]
                public = props.get("Auth", {}).get("Authorizer") == "NONE"
                routes[(props["Method"].lower(), props["Path"])] = not public
    return routes


def resource_ids() -> list[str]:
    from tests.support import template

    return [
        name for name, spec in template()["Resources"].items() if spec["Type"] == "AWS::Serverless::Function"
    ]


def test_health_needs_no_identity() -> None:
    reply = invoke(FUNCTION, http_event("http_health"))
    assert reply.status == 200
    assert reply.json == {"status": "ok"}
    assert reply.headers["X-Request-Id"] == "JKJaXmPLvHcESHA="


def test_the_document_describes_every_route_of_the_template_with_its_security() -> None:
    reply = invoke(FUNCTION, http_event("http_openapi"))
    assert reply.status == 200
    assert reply.headers["Content-Type"] == "application/json"
    document = reply.json
    assert document["openapi"].startswith("3.")
    assert document["info"]["title"] == "Account connections"
    assert document["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "The JWT the identity provider issued.",
    }
    assert document["security"] == [{"bearerAuth": []}]
    documented = {
        (method, path): operation.get("security") != []
        for path, item in document["paths"].items()
        for method, operation in item.items()
    }
    assert documented == template_routes()
    assert {path for (_, path), secured in documented.items() if not secured} == PUBLIC_PATHS


def test_the_document_tells_the_truth_about_inputs_and_errors() -> None:
    document = invoke(FUNCTION, http_event("http_openapi")).json
    create = document["paths"]["/spaces/{spaceId}/connections"]["post"]
    body = create["requestBody"]["content"]["application/json"]["schema"]
    schema = document["components"]["schemas"][body["$ref"].rsplit("/", 1)[-1]]
    assert schema["additionalProperties"] is False
    assert schema["properties"]["accountId"]["pattern"] == "^[0-9]{12}$"
    assert schema["properties"]["roleArns"]["maxItems"] == 10
    assert {"201", "400", "401", "403", "409", "422"} <= set(create["responses"])
    assert "application/problem+json" in create["responses"]["409"]["content"]
    audit = document["paths"]["/audit/connections"]["get"]
    assert {"application/json", "text/csv"} == set(audit["responses"]["200"]["content"])
    assert "from" in {parameter["name"] for parameter in audit["parameters"]}
    assert "HTTPValidationError" not in str(document)  # validation errors are 400 problems here


def test_the_document_describes_both_forms_of_an_approval_policy() -> None:
    document = invoke(FUNCTION, http_event("http_openapi")).json
    put = document["paths"]["/approvers/{accountId}"]["put"]
    body = put["requestBody"]["content"]["application/json"]["schema"]
    schema = document["components"]["schemas"][body["$ref"].rsplit("/", 1)[-1]]
    assert schema["additionalProperties"] is False
    assert set(schema["properties"]) == {
        "email", "approvers", "quorum", "remindAfterSeconds", "escalateAfterSeconds", "escalateTo",
        "approverPrincipals",
    }  # fmt: skip
    assert "{email}" in schema["description"] and "approval policy" in schema["description"]
    assert [set(example) for example in schema["examples"]] == [
        {"email"}, set(schema["properties"]) - {"email"},
    ]  # fmt: skip
    options = schema["properties"]["approvers"]["anyOf"]
    [approvers] = [option for option in options if option["type"] == "array"]
    assert (approvers["minItems"], approvers["maxItems"]) == (1, 10)
    reminders = schema["properties"]["remindAfterSeconds"]
    assert reminders["maxItems"] == 9 and reminders["items"]["minimum"] == 60
    assert "quorum" in put["description"] and "escalateTo" in put["description"]
    assert {"200", "400", "401", "403", "409"} <= set(put["responses"])
    # The answer is the whole policy
    answer = put["responses"]["200"]["content"]["application/json"]["schema"]
    registered = document["components"]["schemas"][answer["$ref"].rsplit("/", 1)[-1]]
    assert set(schema["properties"]) <= set(registered["properties"])
    assert {"accountId", "subscriptionArn", "updatedAt", "updatedBy"} <= set(registered["properties"])


def _version(name: str) -> str:
    found = load_asset(name)
    assert found is not None
    return found.version


def _asset(name: str, **headers: str | None) -> tuple[Reply, bytes]:
    """GET /docs/<name> as API Gateway sends it; the reply and its body as the browser reads it."""
    event = http_event("http_docs_asset", path={"asset": name}, headers=dict(headers))
    result = load_handler(FUNCTION).handler(event, FakeContext())
    reply = invoke(FUNCTION, event)
    body = base64.b64decode(result["body"]) if result["isBase64Encoded"] else result["body"].encode()
    if reply.headers.get("Content-Encoding") == "gzip":
        body = gzip.decompress(body)
    return reply, body


def test_the_page_is_swagger_ui_from_this_origin_and_nothing_inline() -> None:
    reply = invoke(FUNCTION, http_event("http_docs"))
    assert reply.status == 200
    assert reply.headers["Content-Type"] == "text/html; charset=utf-8"
    assert reply.headers["Cache-Control"] == "public, max-age=300"
    assert reply.headers["X-Content-Type-Options"] == "nosniff"
    page = reply.text
    # Relative references only (docs/<file>, kept under a stage path), each one an allowed file.
    references = re.findall(r'(?:src|href)="([^"]*)"', page)
    assert references == ["data:,"] + [  # data:, is the favicon: none to fetch
        f"docs/{name}?v={_version(name)}" for name in ("swagger-ui.css", "swagger-ui-bundle.js", "init.js")
    ]
    assert not re.search(r"<script(?![^>]*\bsrc=)", page)  # no inline script
    assert "<style" not in page and not re.search(r"\s(style|on\w+)=", page)  # nor inline style or handler
    assert '<div id="swagger-ui"></div>' in page


def test_the_page_allows_its_own_files_and_nothing_else() -> None:
    reply = invoke(FUNCTION, http_event("http_docs"))
    assert reply.headers["Content-Security-Policy"] == (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src data:; connect-src 'self'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
    assert DOCS_CSP == reply.headers["Content-Security-Policy"]
    assert "unsafe" not in DOCS_CSP


def test_the_initializer_points_at_the_document_beside_the_page() -> None:
    reply, body = _asset("init.js")
    script = body.decode()
    # Relative: from /docs, /openapi.json; from /prod/docs, /prod/openapi.json.
    assert 'url: "openapi.json"' in script
    assert "validatorUrl: null" in script  # no badge fetched from another origin
    assert "supportedSubmitMethods" not in script  # every method has "Try it out"
    assert "persistAuthorization: false" in script  # a pasted JWT is not kept in localStorage


@pytest.mark.parametrize(
    ("name", "content_type", "marker"),
    [
        ("swagger-ui.css", "text/css; charset=utf-8", b".swagger-ui"),
        ("swagger-ui-bundle.js", "text/javascript; charset=utf-8", b"SwaggerUIBundle"),
        ("init.js", "text/javascript; charset=utf-8", b"SwaggerUIBundle({"),
    ],
)
def test_each_file_of_the_page_is_served_with_its_type(name: str, content_type: str, marker: bytes) -> None:
    plain, plain_body = _asset(name, **{"accept-encoding": None})
    gzipped, gzipped_body = _asset(name, **{"accept-encoding": "gzip, deflate, br"})
    for reply in (plain, gzipped):
        assert reply.status == 200
        assert reply.headers["Content-Type"] == content_type
        assert reply.headers["Cache-Control"] == ASSET_CACHE_CONTROL
        assert reply.headers["X-Content-Type-Options"] == "nosniff"
        assert reply.headers["Vary"] == "Accept-Encoding"
    assert "Content-Encoding" not in plain.headers
    assert gzipped.headers["Content-Encoding"] == "gzip"
    assert plain_body == gzipped_body and marker in plain_body


def test_the_files_are_swagger_uis_own_at_the_pinned_version() -> None:
    from swagger_ui_bundle import swagger_ui_path

    assert swagger_ui_version() == "5.31.0"  # functions/serve_docs/requirements.txt
    for name in ("swagger-ui.css", "swagger-ui-bundle.js"):
        assert _asset(name)[1] == (Path(swagger_ui_path) / name).read_bytes()


@pytest.mark.parametrize(
    "name",
    [
        "index.html", "swagger-initializer.js", "swagger-ui-bundle.js.map", "favicon-32x32.png",
        "oauth2-redirect.html", "SWAGGER-UI.CSS", "swagger-ui.css ", "%2e%2e", "..", ".",
        "../openapi.json", "..%2fopenapi.json", "%2e%2e%2fopenapi.json", "swagger-ui.css/..", "",
        "..%2f..%2f..%2fetc%2fpasswd", "__init__.py",
    ],
)  # fmt: skip
def test_any_other_name_is_not_found(name: str) -> None:
    event = http_event("http_docs_asset", path={"asset": name})
    reply = invoke(FUNCTION, event)
    assert reply.status == 404, name
    assert reply.headers["Content-Type"] == "application/problem+json"
    assert reply.json["status"] == 404


@pytest.mark.parametrize(
    "raw_path", ["/docs/../openapi.json", "/docs/%2e%2e/openapi.json", "/docs/./init.js", "/docs/init.js/"]
)
def test_path_tricks_never_serve_another_route(raw_path: str) -> None:
    # API Gateway matched /docs/{asset}; whatever the raw path says, only an allowed file comes back.
    event = http_event("http_docs_asset", raw_path=raw_path)
    reply = invoke(FUNCTION, event)
    assert reply.status == 404, raw_path
    assert "openapi" not in reply.text and "SwaggerUIBundle" not in reply.text


def test_the_document_describes_the_page_and_its_files() -> None:
    document = invoke(FUNCTION, http_event("http_openapi")).json
    files = document["paths"]["/docs/{asset}"]["get"]
    assert files["security"] == []
    [parameter] = files["parameters"]
    assert parameter["name"] == "asset" and parameter["in"] == "path"
    assert all(name in parameter["description"] for name in ASSET_TYPES)
    assert {"200", "404"} <= set(files["responses"])
    assert set(document["paths"]["/docs"]["get"]["responses"]["200"]["content"]) == {"text/html"}


def test_docs_need_no_identity_and_ignore_one(seeded: dict[str, Any]) -> None:
    anonymous = invoke(FUNCTION, http_event("http_openapi"))
    event = http_event("http_list_connections", raw_path="/openapi.json")
    assert invoke(FUNCTION, event).json == anonymous.json


def test_building_the_document_leaves_the_other_functions_working(seeded: dict[str, Any]) -> None:
    # The document's resolver includes the very routers the API functions use.
    assert generate_document()["paths"]
    assert invoke(FUNCTION, http_event("http_openapi")).status == 200
    assert invoke("manage_connections", http_event("http_list_connections", query={})).status == 200
    assert invoke("administer_spaces", http_event("http_list_approvers")).status == 200


def test_every_jwt_route_documents_the_authorizers_401_as_plain_json() -> None:
    # API Gateway's JWT authorizer answers before any function runs: 401, application/json,
    # {"message": "Unauthorized"}, not an RFC 7807 problem.
    document = invoke(FUNCTION, http_event("http_openapi")).json
    schemas = document["components"]["schemas"]
    secured = [
        (method, path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if operation.get("security") != []
    ]
    assert len(secured) == sum(template_routes().values())
    for method, path, operation in secured:
        content = operation["responses"]["401"]["content"]
        assert set(content) == {"application/json"}, (method, path)
        schema = content["application/json"]["schema"]
        schema = schemas[schema["$ref"].rsplit("/", 1)[-1]] if "$ref" in schema else schema
        assert schema["properties"]["message"]["type"] == "string", (method, path)
        assert schema["required"] == ["message"]
    public = [operation for item in document["paths"].values() for operation in item.values()
              if operation.get("security") == []]  # fmt: skip
    assert public and all("401" not in operation["responses"] for operation in public)


BUILT = Path(__file__).resolve().parents[2] / "functions" / "serve_docs" / "openapi.json"


def test_the_built_document_is_what_the_routers_make() -> None:
    assert BUILT.is_file(), "functions/serve_docs/openapi.json is missing: run make openapi"
    assert BUILT.read_text(encoding="utf-8") == document_text(generate_document()), (
        "functions/serve_docs/openapi.json is stale: run make openapi and commit it"
    )


def test_the_function_serves_the_built_file_without_building_it(monkeypatch: pytest.MonkeyPatch) -> None:
    def never() -> dict[str, Any]:
        raise AssertionError("the document was generated on a request")

    load_handler(FUNCTION)  # its app.py points the router at the built file
    docs.openapi_text.cache_clear()
    monkeypatch.setattr(docs, "generate_document", never)
    reply = invoke(FUNCTION, http_event("http_openapi"))
    assert reply.status == 200 and reply.text == BUILT.read_text(encoding="utf-8")


def test_without_a_built_file_the_document_is_generated(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    load_handler(FUNCTION)
    monkeypatch.setattr(docs, "_document_dir", [tmp_path])
    docs.openapi_text.cache_clear()
    try:
        assert invoke(FUNCTION, http_event("http_openapi")).text == BUILT.read_text(encoding="utf-8")
    finally:
        docs.openapi_text.cache_clear()
