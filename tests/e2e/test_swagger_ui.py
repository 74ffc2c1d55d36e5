"""/docs on the running local stack, in a real headless Chromium: Swagger UI renders every route from
this origin's files alone, under its Content-Security-Policy, and "Try it out" calls the API."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from local.process import StackProcess
from tests.e2e.client import StackClient

# Reported to the console by the page itself, before any of its scripts runs.
REPORT_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (e) => {
  console.error("CSP violation " + JSON.stringify({directive: e.violatedDirective, blocked: e.blockedURI}));
});
"""


@pytest.fixture
def docs_page(stack: StackProcess, browser_context: Any) -> Iterator[tuple[Any, list[str], list[str]]]:
    """A page on /docs, with every URL it requested and every console error."""
    page = browser_context.new_page()
    requested: list[str] = []
    errors: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.add_init_script(REPORT_VIOLATIONS)
    try:
        page.goto(f"{stack.url}/docs")
        yield page, requested, errors
    finally:
        page.close()


def _operation(page: Any, method: str, path: str) -> Any:
    """One operation block of Swagger UI, by its method and path."""
    return page.locator(f".opblock-{method}").filter(
        has=page.locator(f'.opblock-summary-path[data-path="{path}"]')
    )


def test_the_page_renders_every_route_from_this_origin_alone(
    stack: StackProcess, docs_page: tuple[Any, list[str], list[str]]
) -> None:
    page, requested, errors = docs_page
    # Given the page  Then its routes are there, as Swagger UI renders them
    for method, path in [
        ("get", "/health"),
        ("post", "/spaces/{spaceId}/connections"),
        ("put", "/approvers/{accountId}"),
        ("get", "/audit/events"),
        ("post", "/verify"),
    ]:
        _operation(page, method, path).wait_for()
    assert page.locator(".opblock").count() == _operation_count(stack)
    assert "Account connections" in page.locator(".info .title").inner_text()
    # And it fetched nothing from anywhere else, and the policy refused nothing
    origin = urlsplit(stack.url)
    assert requested and all(urlsplit(url)[:2] == origin[:2] for url in requested), requested
    assert {urlsplit(url).path for url in requested} == {
        "/docs", "/docs/swagger-ui.css", "/docs/swagger-ui-bundle.js", "/docs/init.js", "/openapi.json",
    }  # fmt: skip
    assert errors == []


def test_try_it_out_calls_the_api(docs_page: tuple[Any, list[str], list[str]]) -> None:
    page, requested, errors = docs_page
    # Given GET /health  When it is tried out and executed
    health = _operation(page, "get", "/health")
    health.locator(".opblock-summary").click()
    health.get_by_role("button", name="Try it out").click()
    health.get_by_role("button", name="Execute").click()
    # Then the answer is shown: 200 and the body
    live = health.locator(".live-responses-table .response")
    live.locator(".response-col_status").filter(has_text="200").wait_for()
    assert '"ok"' in live.locator(".response-col_description").inner_text()
    assert any(urlsplit(url).path == "/health" for url in requested)
    assert errors == []


def test_the_page_and_its_files_as_a_browser_gets_them(client: StackClient) -> None:
    page = client.request("GET", "/docs")
    assert page.status == 200
    policy = page.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "unsafe" not in policy
    for name, content_type in [
        ("swagger-ui.css", "text/css; charset=utf-8"),
        ("swagger-ui-bundle.js", "text/javascript; charset=utf-8"),
        ("init.js", "text/javascript; charset=utf-8"),
    ]:
        reply = client.request("GET", f"/docs/{name}")
        assert (reply.status, reply.headers["Content-Type"]) == (200, content_type), name
    assert client.request("GET", "/docs/index.html").status == 404


@pytest.mark.parametrize(
    "raw_path",
    ["/docs/../openapi.json", "/docs/%2e%2e/openapi.json", "/docs/%2e%2e", "/docs/..%2fopenapi.json",
     "/docs/swagger-ui.css/../../openapi.json", "/docs/%2fetc%2fpasswd", "/docs/swagger-ui.css.map"],
)  # fmt: skip
def test_path_tricks_never_serve_anything_else(stack: StackProcess, raw_path: str) -> None:
    # Sent as written (no client normalizes the dots away), to the front as API Gateway would get it.
    address = urlsplit(stack.url)
    connection = http.client.HTTPConnection(address.hostname or "127.0.0.1", address.port, timeout=30)
    try:
        connection.request("GET", raw_path)
        reply = connection.getresponse()
        body = reply.read()
    finally:
        connection.close()
    # No route (API Gateway's own 404), or /docs/{asset} with a name not on the list (a problem).
    assert reply.status == 404, raw_path
    assert b'"openapi"' not in body and b"SwaggerUIBundle" not in body and b"root:" not in body


def _operation_count(stack: StackProcess) -> int:
    document = json.loads(StackClient(stack.url).request("GET", "/openapi.json").body)
    methods = {"get", "put", "post", "delete", "patch", "head", "options"}
    return sum(1 for item in document["paths"].values() for method in item if method in methods)
