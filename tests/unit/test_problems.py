"""Errors become RFC 7807 problems in one place: STATUS_OF, validation, body checks."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter
from pydantic import BaseModel, ConfigDict

from account_connections.api.app import MAX_BODY_BYTES, MAX_JSON_DEPTH, create_app, handle, json_too_deep
from account_connections.api.problems import PROBLEM_JSON, STATUS_OF
from account_connections.domain import errors
from tests.support import FakeContext, http_event

router = APIGatewayHttpRouter()
RAISED: dict[str, Exception] = {}


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    name: str
    tags: list[str] = []


@router.post("/spaces/<spaceId>/connections")
def post(spaceId: str, body: Body) -> dict[str, Any]:
    if "error" in RAISED:
        raise RAISED["error"]
    return {"name": body.name}


APP = create_app(router)


def call(
    body: Any = None, headers: dict[str, str | None] | None = None, **overrides: Any
) -> tuple[int, dict, Any]:
    event = http_event(
        "http_create_connection", body=body if body is not None else {"name": "x"}, headers=headers
    )
    event.update(overrides)
    result = handle(APP, event, FakeContext())  # type: ignore[arg-type]
    text = result.get("body") or ""
    return result["statusCode"], result["headers"], json.loads(text) if text else None


@pytest.fixture(autouse=True)
def _no_error() -> Any:
    RAISED.clear()
    yield
    RAISED.clear()


def _construct(cls: type[errors.DomainError]) -> errors.DomainError:
    if cls is errors.VerificationTokenGone:
        return cls("what happened", reason="used")
    return cls("what happened")


@pytest.mark.parametrize("cls", list(STATUS_OF), ids=lambda cls: cls.__name__)
def test_each_domain_error_maps_to_its_one_status(cls: type[errors.DomainError]) -> None:
    RAISED["error"] = _construct(cls)
    status, headers, body = call()
    assert status == STATUS_OF[cls]
    assert headers["Content-Type"] == PROBLEM_JSON
    assert body["status"] == status and body["title"] == cls.title and body["detail"] == "what happened"
    assert body["type"].endswith(str(status))
    assert headers["X-Request-Id"] == "JKJaXmPLvHcESHA="


def test_invalid_request_lists_its_field_errors() -> None:
    RAISED["error"] = errors.InvalidRequest("bad", errors=[{"field": "roleArns[1]", "message": "no"}])
    status, _, body = call()
    assert (status, body["errors"]) == (400, [{"field": "roleArns[1]", "message": "no"}])


def test_an_unexpected_error_is_a_500_problem_that_leaks_nothing() -> None:
    RAISED["error"] = RuntimeError("secret internals")
    status, _, body = call()
    assert status == 500
    assert "secret" not in json.dumps(body)
    assert "request id" in body["detail"]


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"name": 5}, {"name"}),
        ({}, {"name"}),
        ({"name": "x", "extra": 1}, {"extra"}),
        ({"name": "x", "tags": ["a", 2]}, {"tags[1]"}),
        ("{not json", {"body"}),
        ("[1, 2]", {"body"}),
        ('"text"', {"body"}),
    ],
)
def test_validation_problems_name_each_field(body: Any, fields: set[str]) -> None:
    status, _, problem = call(body)
    assert status == 400
    assert {error["field"] for error in problem["errors"]} == fields
    assert all(error["message"] for error in problem["errors"])


def test_unknown_fields_and_missing_ones_say_so() -> None:
    _, _, problem = call({"extra": 1})
    messages = {error["field"]: error["message"] for error in problem["errors"]}
    assert messages == {"extra": "unknown field", "name": "is required"}


@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain", "application/x-www-form-urlencoded", "json", "application/problem+json"],
)
def test_a_body_that_is_not_json_by_its_content_type_is_refused(content_type: str | None) -> None:
    status, _, problem = call(headers={"content-type": content_type})
    assert status == 400
    assert problem["errors"] == [{"field": "Content-Type", "message": "must be application/json"}]


def test_json_with_parameters_is_accepted_and_other_json_types_are_not() -> None:
    assert call(headers={"content-type": "application/json; charset=utf-8"})[0] == 200
    assert call(headers={"content-type": "application/merge-patch+json"})[0] == 400


def test_bodies_over_64_kib_are_refused_before_anything_reads_them() -> None:
    RAISED["error"] = AssertionError("the route must not run")
    padded = json.dumps({"name": "x" * (MAX_BODY_BYTES - 11)})
    assert len(padded.encode()) == MAX_BODY_BYTES + 1
    status, _, problem = call(padded)
    assert (status, problem["status"]) == (413, 413)


def test_a_body_of_exactly_64_kib_is_read() -> None:
    exact = json.dumps({"name": "x" * (MAX_BODY_BYTES - 12)})
    assert len(exact.encode()) == MAX_BODY_BYTES
    assert call(exact)[0] == 200


def test_a_base64_body_is_refused_as_not_json_text() -> None:
    status, _, problem = call("eyJuYW1lIjoieCJ9", isBase64Encoded=True)
    assert status == 400 and problem["errors"][0]["field"] == "body"


def test_an_unknown_route_is_a_404_problem() -> None:
    event = http_event("http_create_connection", raw_path="/nowhere")
    result = handle(APP, event, FakeContext())  # type: ignore[arg-type]
    assert result["statusCode"] == 404
    assert json.loads(result["body"])["title"] == "Not found"


@pytest.mark.parametrize(
    ("text", "deep"),
    [
        ("[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH, False),
        ("[" * (MAX_JSON_DEPTH + 1), True),
        ('{"a":' * (MAX_JSON_DEPTH + 1), True),
        ("[{" * (MAX_JSON_DEPTH // 2) + "[", True),
        ("[]" * 10_000, False),  # wide, not deep
        (json.dumps({"name": "[" * 10_000}), False),  # brackets in a string are text
        (json.dumps({"name": '\\"[' * 1_000 + '"'}), False),  # escaped quotes do not end the string
        ('"unterminated' + "[" * 100, False),
        ('"a\\', False),  # a string that ends on a backslash
    ],
)
def test_the_depth_scan_counts_only_brackets_outside_strings(text: str, deep: bool) -> None:
    assert json_too_deep(text) is deep


def test_json_nested_too_deep_is_refused_before_anything_parses_it() -> None:
    RAISED["error"] = AssertionError("the route must not run")
    status, _, problem = call("[" * 60_000)
    assert status == 400
    assert problem["errors"] == [
        {"field": "body", "message": "must not nest arrays and objects deeper than 32 levels"}
    ]


def test_a_rate_limited_link_is_429_and_says_when_to_retry() -> None:
    RAISED["error"] = errors.TooManyLinks("try again in 42 seconds", retry_after=42)
    status, headers, body = call()
    assert (status, headers["Retry-After"], body["title"]) == (429, "42", "Too many links")
    assert headers["Content-Type"] == PROBLEM_JSON
    # Once every link is used there is no time to retry at
    RAISED["error"] = errors.TooManyLinks("this request has had its 10 links")
    status, headers, _ = call()
    assert status == 429 and "Retry-After" not in headers
