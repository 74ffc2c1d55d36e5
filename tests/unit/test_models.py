"""The input models enforce SPEC.md's input rules; RoleArn.parse reads role ARNs."""

from __future__ import annotations

import inspect
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from account_connections.domain.chain import ChainHead
from account_connections.domain.clock import isoformat
from account_connections.domain.connection import Connection, CreateConnectionRequest, RoleArn
from account_connections.domain.registry import (
    PutApproverRequest,
    PutMemberRequest,
    PutSpaceRequest,
    SpaceRole,
)
from tests import builders

VALID = {"accountId": "111122223333", "displayName": "Production"}


def refused_fields(model: type[BaseModel], data: dict[str, Any]) -> set[str]:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(data)
    return {".".join(str(part) for part in error["loc"]) for error in caught.value.errors()}


def test_a_minimal_request_is_accepted_with_defaults() -> None:
    request = CreateConnectionRequest.model_validate(VALID)
    assert request.description is None
    assert request.roleArns == []


@pytest.mark.parametrize(
    "account_id",
    [
        "11112222333",  # 11 digits
        "1111222233334",  # 13 digits
        "11112222333a",
        " 111122223333",
        "111122223333\n",
        "١١١١٢٢٢٢٣٣٣٣",  # Arabic-Indic digits
        "１１１１２２２２３３３３",  # fullwidth digits
        "𝟏𝟏𝟏𝟏𝟐𝟐𝟐𝟐𝟑𝟑𝟑𝟑",  # mathematical bold digits
        "",
    ],
)
def test_account_id_is_exactly_twelve_ascii_digits(account_id: str) -> None:
    assert refused_fields(CreateConnectionRequest, {**VALID, "accountId": account_id}) == {"accountId"}


def test_account_id_as_a_number_is_refused_not_coerced() -> None:
    assert refused_fields(CreateConnectionRequest, {**VALID, "accountId": 111122223333}) == {"accountId"}


@pytest.mark.parametrize("name", ["x", "x" * 100, "Prod – café 🚀", "<b>markup</b> & 'quotes'"])
def test_display_name_of_1_to_100_printable_characters_is_accepted(name: str) -> None:
    assert CreateConnectionRequest.model_validate({**VALID, "displayName": name}).displayName == name


@pytest.mark.parametrize(
    "name",
    ["", "   ", "x" * 101, "tab\there", "new\nline", "nul\x00", "bell\x07", "zero\u200bwidth", "bidi\u202e"],
)
def test_display_name_refuses_empty_long_and_control_characters(name: str) -> None:
    assert refused_fields(CreateConnectionRequest, {**VALID, "displayName": name}) == {"displayName"}


@pytest.mark.parametrize(
    "name", ["no\u00a0break", "line\u2028separator", "para\u2029graph", "ideographic\u3000space"]
)
def test_display_name_refuses_separators_other_than_the_space(name: str) -> None:
    assert refused_fields(CreateConnectionRequest, {**VALID, "displayName": name}) == {"displayName"}


def test_a_description_may_break_lines_and_say_anything_readable() -> None:
    text = "Deploy target\nfor the web app: <b>ünïcödé</b> & 日本語, 100 % sure"
    assert CreateConnectionRequest.model_validate({**VALID, "description": text}).description == text


@pytest.mark.parametrize(
    "text",
    ["tab\there", "carriage\rreturn", "nul\x00", "zero\u200bwidth", "bidi\u202e", "nbsp\u00a0", "ls\u2028"],
)
def test_a_description_refuses_control_format_and_separator_characters(text: str) -> None:
    assert refused_fields(CreateConnectionRequest, {**VALID, "description": text}) == {"description"}


def test_description_is_at_most_1000_characters() -> None:
    assert (
        CreateConnectionRequest.model_validate({**VALID, "description": "d" * 1000}).description == "d" * 1000
    )
    assert refused_fields(CreateConnectionRequest, {**VALID, "description": "d" * 1001}) == {"description"}


def role(name: str, account: str = "111122223333") -> str:
    return f"arn:aws:iam::{account}:role/{name}"


def test_at_most_ten_role_arns() -> None:
    ten = [role(f"Role{i}") for i in range(10)]
    assert len(CreateConnectionRequest.model_validate({**VALID, "roleArns": ten}).roleArns) == 10
    assert refused_fields(CreateConnectionRequest, {**VALID, "roleArns": [*ten, role("Eleventh")]}) == {
        "roleArns"
    }


def test_a_malformed_role_arn_is_refused_by_its_index() -> None:
    data = {**VALID, "roleArns": [role("Good"), "arn:aws:iam::111122223333:user/NotARole"]}
    assert refused_fields(CreateConnectionRequest, data) == {"roleArns.1"}


@pytest.mark.parametrize("field", ["accountid", "extra", "connectionId", "status"])
def test_unknown_fields_are_refused(field: str) -> None:
    assert refused_fields(CreateConnectionRequest, {**VALID, field: "x"}) == {field}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("displayName", 5),
        ("description", ["x"]),
        ("roleArns", "arn:aws:iam::111122223333:role/A"),
        ("roleArns", None),
    ],
)
def test_wrong_types_are_refused_not_coerced(field: str, value: Any) -> None:
    assert field in refused_fields(CreateConnectionRequest, {**VALID, field: value})


def test_role_arn_parse_reads_partition_account_path_and_name() -> None:
    parsed = RoleArn.parse("arn:aws-us-gov:iam::111122223333:role/deploy/team/Build+Role=1,x.y@z_w-v")
    assert (parsed.partition, parsed.account_id, parsed.path, parsed.name) == (
        "aws-us-gov",
        "111122223333",
        "/deploy/team/",
        "Build+Role=1,x.y@z_w-v",
    )
    assert RoleArn.parse(role("BuildRole")).path == "/"


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws:iam::11112222333:role/Short",
        "arn:aws:iam::111122223333:role/" + "n" * 65,
        "arn:aws:iam::111122223333:role/" + "p/" * 300 + "Name",
        "arn:aws:s3:::bucket",
        "arn:aws:iam::111122223333:role/Bad Name",
        "arn:aws:iam::111122223333:role/Ünicode",
        "arn:other:iam::111122223333:role/Name",
    ],
)
def test_role_arn_parse_refuses_what_is_not_a_role_arn(arn: str) -> None:
    with pytest.raises(ValueError):
        RoleArn.parse(arn)


def test_operator_inputs() -> None:
    assert PutSpaceRequest.model_validate({"name": "Demo space"}).name == "Demo space"
    assert refused_fields(PutSpaceRequest, {"name": ""}) == {"name"}
    assert refused_fields(PutSpaceRequest, {"name": "  "}) == {"name"}
    assert refused_fields(PutSpaceRequest, {"name": "a\x1bb"}) == {"name"}
    assert PutMemberRequest.model_validate({"role": "POWER_USER"}).role is SpaceRole.POWER_USER
    assert refused_fields(PutMemberRequest, {"role": "ROOT"}) == {"role"}
    assert refused_fields(PutMemberRequest, {"role": 1}) == {"role"}
    assert PutApproverRequest.model_validate({"email": "admin@example.com"}).email == "admin@example.com"
    for email in ["admin", "a@b", "<a@b.c>", "a b@c.d", "a@b@c.d", "x" * 250 + "@a.bc"]:
        assert refused_fields(PutApproverRequest, {"email": email}) == {"email"}


def test_isoformat_is_sortable_utc_with_milliseconds() -> None:
    from datetime import datetime, timedelta, timezone

    moment = datetime(2026, 11, 26, 8, 30, 1, 123456, tzinfo=timezone(timedelta(hours=1)))
    assert isoformat(moment) == "2026-11-26T07:30:01.123Z"


def test_a_connection_carries_its_chain_head_and_starts_with_the_empty_chain() -> None:
    built = builders.connection()
    assert built.chain_head == ChainHead()
    head = ChainHead(seq=3, hash="h", at="2026-11-01T00:00:00.000Z")
    assert built.with_chain(head).chain_head == head
    assert built.model_copy(update={"version": 2}).chain_head == head
    data = built.model_dump()
    assert Connection.model_validate(data).with_chain(ChainHead()) == Connection.model_validate(data)
    assert "chain" not in str(built.model_dump())


def test_building_a_connection_inspects_no_signature(monkeypatch: pytest.MonkeyPatch) -> None:
    """A connection is built several times a request: pydantic inspected a private attribute's
    default factory (its signature) for each one, about 0.1 ms; a plain default costs nothing."""
    data = builders.connection().model_dump()
    calls: list[object] = []
    inspected = inspect.__dict__["_signature_from_callable"]  # what inspect.signature calls

    def counted(obj: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(obj)
        return inspected(obj, *args, **kwargs)

    monkeypatch.setattr(inspect, "_signature_from_callable", counted)
    Connection.model_validate(data)
    assert calls == []
