"""acctconn smoke against a fake API that behaves as the service does: every check passes, and
each way a deployment can be broken fails the check that covers it (with the exit code that
says what kind of failure it is)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.cli.fake_api import FakeApi, problem
from tests.cli.test_verify import chain_events, sealed

SPACE, ACCOUNT, CONNECTION = "demo", "111122223333", "0f8fad5b-d9cb-469f-a165-70867728950e"
CHECKS = ["health", "documents", "refusals without identity", "a request made and cancelled",
          "its audit trail verifies"]  # fmt: skip
UNAUTHORIZED = problem(401, "Not authenticated", "no token")


class Service:
    """The routes the smoke test calls, answering as a healthy stack does; tests break one."""

    def __init__(self) -> None:
        self.status = "PENDING_APPROVAL"
        self.export = chain_events(f"CONNECTION#{CONNECTION}", 2, prefix="e")
        self.export[1] = sealed({**{k: v for k, v in self.export[1].items() if k != "hash"},
                                 "toStatus": "CANCELLED"})  # fmt: skip
        self.export_broken = False
        self.docs_headers = {
            "content-type": "text/html; charset=utf-8",
            "content-security-policy": "default-src 'none'",
        }
        self.paths = ["/spaces/{spaceId}/connections", "/audit/export", "/audit/digests", "/health"]

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path, method = request.url.path, request.method
        authorized = request.headers.get("authorization", "").startswith("Bearer jwt-")
        if path == "/health":
            return httpx.Response(200, text="ok")
        if path == "/openapi.json":
            return httpx.Response(200, json={"openapi": "3.1.0", "paths": {p: {} for p in self.paths}})
        if path == "/docs":
            return httpx.Response(200, text="<html></html>", headers=self.docs_headers)
        if path == "/verify":
            return problem(404, "Not Found", "no such link")
        if not authorized:
            return UNAUTHORIZED
        connection = {"connectionId": CONNECTION, "status": self.status}
        if (method, path) == ("POST", f"/spaces/{SPACE}/connections"):
            return httpx.Response(201, json=connection)
        if path == f"/spaces/{SPACE}/connections/{CONNECTION}":
            if method == "DELETE":
                self.status = "CANCELLED"
            return httpx.Response(200, json={**connection, "status": self.status})
        if path == "/audit/events":
            items = [{"type": "REQUESTED", "toStatus": "PENDING_APPROVAL"},
                     {"type": "STATUS_CHANGED", "toStatus": self.status}]  # fmt: skip
            return httpx.Response(200, json={"items": items})
        if path == "/audit/export":
            events = [dict(event) for event in self.export]
            if self.export_broken:
                events[0]["actor"] = "mallory"
            body = "".join(json.dumps(event) + "\n" for event in events)
            return httpx.Response(200, text=body, headers={"content-type": "application/x-ndjson"})
        return problem(404, "Not Found", f"no route {method} {path}")


@pytest.fixture
def service(api: FakeApi) -> Service:
    healthy = Service()
    for method, path in [("GET", "/health"), ("GET", "/openapi.json"), ("GET", "/docs"), ("POST", "/verify"),
                         ("GET", f"/spaces/{SPACE}/connections"), ("POST", f"/spaces/{SPACE}/connections"),
                         ("GET", f"/spaces/{SPACE}/connections/{CONNECTION}"),
                         ("DELETE", f"/spaces/{SPACE}/connections/{CONNECTION}"), ("GET", "/audit/events"),
                         ("GET", "/audit/export")]:  # fmt: skip
        api.on(method, path, healthy)
    return healthy


def smoke(api: FakeApi, *extra: str, token: str | None = "jwt-of-alice") -> Any:
    return api.run("smoke", "--space", SPACE, "--account", ACCOUNT, *extra, token=token)


def lines(result: Any) -> dict[str, str]:
    found = {}
    for line in result.stdout.splitlines():
        if line.startswith(("ok  ", "FAIL")):
            found[line[6:].split(" (", 1)[0]] = line[:4].strip()
    return found


def test_a_healthy_stack_passes_every_check(api: FakeApi, service: Service) -> None:
    result = smoke(api)
    assert result.exit_code == 0, result.stdout
    assert lines(result) == dict.fromkeys(CHECKS, "ok")
    assert "smoke: 5 of 5 checks passed against http://api.test" in result.stdout
    # The request it made was cancelled, with an Idempotency-Key.
    assert service.status == "CANCELLED"
    created = next(r for r in api.requests if r.method == "POST" and r.url.path.endswith("/connections"))
    assert created.headers["idempotency-key"] and json.loads(created.content)["accountId"] == ACCOUNT


def test_the_auditor_token_is_used_for_the_audit_checks(api: FakeApi, service: Service) -> None:
    result = smoke(api, "--auditor-token", "jwt-of-audrey")
    assert result.exit_code == 0
    tokens = {r.headers.get("authorization", "") for r in api.requests if r.url.path.startswith("/audit/")}
    sent = {token for token in tokens if token.startswith("Bearer jwt-")}
    assert sent == {"Bearer jwt-of-audrey"}


@pytest.mark.parametrize(
    ("breakage", "failed"),
    [
        (lambda s: s.paths.remove("/audit/digests"), "documents"),
        (lambda s: s.docs_headers.pop("content-security-policy"), "documents"),
        (lambda s: setattr(s, "export_broken", True), "its audit trail verifies"),
    ],
)
def test_each_breakage_fails_its_check(api: FakeApi, service: Service, breakage: Any, failed: str) -> None:
    breakage(service)
    result = smoke(api)
    assert result.exit_code == 1, result.stdout
    assert lines(result)[failed] == "FAIL"
    assert [name for name, state in lines(result).items() if state == "FAIL"] == [failed]


def test_a_route_open_without_a_token_fails_the_refusals(api: FakeApi, service: Service) -> None:
    api.on("GET", "/audit/events", httpx.Response(200, json={"items": []}))
    result = smoke(api)
    assert result.exit_code == 1 and lines(result)["refusals without identity"] == "FAIL"
    assert "GET /audit/events with no token answered 200, not 401" in result.stdout


def test_a_refused_request_fails_its_check_and_the_trail(api: FakeApi, service: Service) -> None:
    api.on("POST", f"/spaces/{SPACE}/connections", problem(422, "Unprocessable", "no administrator"))
    result = smoke(api)
    assert result.exit_code == 1
    assert lines(result)["a request made and cancelled"] == "FAIL" and "(422)" in result.stdout
    assert lines(result)["its audit trail verifies"] == "FAIL"


def test_an_unreachable_api_is_exit_3(api: FakeApi) -> None:
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    api.on("GET", "/health", down)
    result = smoke(api)
    assert result.exit_code == 3 and "cannot reach the API" in result.stderr


def test_a_refused_token_is_exit_4(api: FakeApi, service: Service) -> None:
    result = smoke(api, token="not-a-jwt")
    assert result.exit_code == 4
    assert smoke(api, token=None).exit_code == 4
