"""The shared API client and output: what is sent, and how each failure becomes one line and an
exit code (served by httpx's MockTransport; nothing listens)."""

from __future__ import annotations

import json
from collections.abc import Callable

import click
import httpx
import pytest
from click.testing import CliRunner

from acctconn.api import ApiClient
from acctconn.app import App, pass_app
from acctconn.errors import ApiError, AuthError, CliError, ExitCode, RefusedError
from acctconn.main import cli
from acctconn.output import Column

Handler = Callable[[httpx.Request], httpx.Response]
PROBLEM = {"content-type": "application/problem+json", "X-Request-Id": "req-123"}


def client(handler: Handler, token: str | None = "jwt-of-alice") -> ApiClient:
    return ApiClient("http://api.test/", token, transport=httpx.MockTransport(handler))


def failure(handler: Handler) -> CliError:
    with pytest.raises(CliError) as caught, client(handler) as api:
        api.get_json("/spaces/demo/connections")
    return caught.value


def test_sends_the_bearer_token_and_asks_for_json() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"ok": True})

    with client(handler) as api:
        assert api.get_json("/health", {"status": "VERIFIED", "limit": 5, "nextToken": None}) == {"ok": True}
    (request,) = seen
    assert request.url == "http://api.test/health?status=VERIFIED&limit=5"
    assert request.headers["Authorization"] == "Bearer jwt-of-alice"
    assert request.headers["Accept"].startswith("application/json")
    assert request.headers["User-Agent"].startswith("acctconn/")


def test_a_problem_is_one_line_with_its_fields_and_request_id() -> None:
    body = {
        "type": "https://httpstatuses.io/400",
        "title": "Invalid request",
        "status": 400,
        "detail": "the request is not valid:\naccountId",
        "errors": [
            {"field": "accountId", "message": "must be 12 digits"},
            {"field": "x", "message": "unknown field"},
        ],
    }
    error = failure(lambda request: httpx.Response(400, json=body, headers=PROBLEM))
    assert isinstance(error, RefusedError)
    assert error.exit_code == ExitCode.REFUSED == 1
    assert error.message == (
        "Invalid request (400): the request is not valid: accountId; "
        "accountId: must be 12 digits, x: unknown field [request id req-123]"
    )


@pytest.mark.parametrize(
    ("status", "kind", "code"),
    [
        (401, AuthError, 4),
        (403, RefusedError, 1),
        (404, RefusedError, 1),
        (409, RefusedError, 1),
        (422, RefusedError, 1),
        (500, ApiError, 3),
        (503, ApiError, 3),
    ],
)
def test_each_status_has_its_exit_code(status: int, kind: type[CliError], code: int) -> None:
    body = {"title": "Something", "status": status, "detail": "because"}
    error = failure(lambda request: httpx.Response(status, json=body, headers=PROBLEM))
    assert type(error) is kind
    assert error.exit_code == code
    assert error.message == f"Something ({status}): because [request id req-123]"


def test_an_answer_that_is_not_a_problem_still_says_what_failed() -> None:
    error = failure(lambda request: httpx.Response(502, text="<html>bad gateway</html>"))
    assert isinstance(error, ApiError)
    assert error.message == "GET /spaces/demo/connections: HTTP 502 Bad Gateway"


def test_a_redirect_is_not_followed() -> None:
    error = failure(lambda request: httpx.Response(302, headers={"Location": "http://elsewhere.test/"}))
    assert isinstance(error, ApiError)


def test_an_unreachable_api_is_an_api_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    error = failure(handler)
    assert isinstance(error, ApiError) and error.exit_code == 3
    assert error.message == "cannot reach the API at http://api.test: connection refused"


def test_a_timeout_is_an_api_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    error = failure(handler)
    assert isinstance(error, ApiError)
    assert "no answer in time" in error.message


def test_a_2xx_that_is_not_json_is_an_api_error() -> None:
    error = failure(lambda request: httpx.Response(200, text="hello", headers={"X-Request-Id": "r9"}))
    assert isinstance(error, ApiError)
    assert error.message.endswith("is not JSON [request id r9]")


def test_no_token_is_an_auth_error_before_anything_is_sent() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise AssertionError("nothing may be sent without a token")

    with pytest.raises(AuthError) as caught, client(handler, token=None) as api:
        api.get_json("/approvers")
    assert "ACCTCONN_TOKEN" in caught.value.message
    with client(lambda request: httpx.Response(200, json={"status": "ok"}), token=None) as api:
        assert api.request("GET", "/health", authenticated=False).json() == {"status": "ok"}


def test_paginate_follows_next_token_until_it_is_absent() -> None:
    pages = {
        None: {"items": [1, 2], "nextToken": "t1"},
        "t1": {"items": [3], "nextToken": "t2"},
        "t2": {"items": []},
    }
    tokens: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        token = request.url.params.get("nextToken")
        tokens.append(token)
        assert request.url.params["status"] == "VERIFIED"
        return httpx.Response(200, json=pages[token])

    with client(handler) as api:
        assert list(api.paginate("/spaces/demo/connections", {"status": "VERIFIED"})) == [1, 2, 3]
    assert tokens == [None, "t1", "t2"]


# the global options and the output, through a command registered for the test


@click.command("probe")
@pass_app
def probe(app: App) -> None:
    with app.client() as api:
        app.emit(
            api.get_json("/things"), [Column("Name", "name"), Column("Owner", "owner.sub")], title="Things"
        )


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[httpx.Request]:
    """`probe` on the root group, its client answered by a mock transport."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=[{"name": "[bold]x[/bold]", "owner": {"sub": "alice"}}])

    def mocked_client(app: App) -> ApiClient:
        return ApiClient(app.api_url, app.token, transport=httpx.MockTransport(handler))

    monkeypatch.setattr(App, "client", mocked_client)
    monkeypatch.setitem(cli.commands, "probe", probe)
    return seen


def test_global_options_and_environment_reach_the_client(served: list[httpx.Request]) -> None:
    result = CliRunner().invoke(
        cli, ["--json", "probe"], env={"ACCTCONN_API": "http://env.test", "ACCTCONN_TOKEN": "t0"}
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == [{"name": "[bold]x[/bold]", "owner": {"sub": "alice"}}]
    assert str(served[-1].url) == "http://env.test/things"
    assert served[-1].headers["Authorization"] == "Bearer t0"
    result = CliRunner().invoke(cli, ["--api", "http://opt.test", "--token", "t1", "--json", "probe"])
    assert result.exit_code == 0, result.output
    assert str(served[-1].url) == "http://opt.test/things"
    assert served[-1].headers["Authorization"] == "Bearer t1"


def test_the_default_api_is_the_local_stack(
    served: list[httpx.Request], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ACCTCONN_API", raising=False)
    CliRunner().invoke(cli, ["--token", "t", "--json", "probe"])
    assert str(served[-1].url) == "http://127.0.0.1:3000/things"


def test_without_json_a_table_shows_data_as_text(served: list[httpx.Request]) -> None:
    result = CliRunner().invoke(cli, ["--token", "t", "probe"])
    assert result.exit_code == 0, result.output
    assert "Things" in result.output and "Owner" in result.output and "alice" in result.output
    assert "[bold]x[/bold]" in result.output


def test_a_bad_api_url_is_a_usage_error() -> None:
    result = CliRunner().invoke(cli, ["--api", "ftp://x", "prove", "--help"])
    assert result.exit_code == 2
