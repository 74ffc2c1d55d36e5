"""functions/serve_docs: the OpenAPI document generated from every router, the readable page, and
the health check, none of which needs an identity."""

from __future__ import annotations

import re
from typing import Any

from account_connections.api.docs import DOCS_CSP, PUBLIC_PATHS
from tests.support import http_event, invoke, resource

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


def test_the_page_renders_the_document_self_contained() -> None:
    reply = invoke(FUNCTION, http_event("http_docs"))
    assert reply.status == 200
    assert reply.headers["Content-Type"] == "text/html; charset=utf-8"
    assert reply.headers["Content-Security-Policy"] == DOCS_CSP
    assert "default-src 'none'" in DOCS_CSP and "script-src" not in DOCS_CSP
    assert reply.headers["Cache-Control"]
    assert reply.headers["X-Content-Type-Options"] == "nosniff"
    page = reply.text
    assert "<script" not in page
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)  # no external assets
    for route in ("/spaces/{spaceId}/connections", "/approvers/{accountId}", "/audit/events", "/health"):
        assert f'<span class="path">{route}</span>' in page
    assert 'id="schema-CreateConnectionRequest"' in page


def test_the_style_is_the_one_the_policy_allows() -> None:
    import base64
    import hashlib

    page = invoke(FUNCTION, http_event("http_docs")).text
    [style] = re.findall(r"<style>(.*?)</style>", page, re.S)
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    assert f"'sha256-{digest}'" in DOCS_CSP


def test_docs_need_no_identity_and_ignore_one(seeded: dict[str, Any]) -> None:
    anonymous = invoke(FUNCTION, http_event("http_openapi"))
    event = http_event("http_list_connections", raw_path="/openapi.json")
    assert invoke(FUNCTION, event).json == anonymous.json


def test_building_the_document_leaves_the_other_functions_working(seeded: dict[str, Any]) -> None:
    # The document's resolver includes the very routers the API functions use.
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
