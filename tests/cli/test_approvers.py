"""acctconn approvers list|put against a fake API: the body of each form of policy, what is
refused before anything is sent, and the output."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.cli.fake_api import FakeApi, problem

ACCOUNT = "999900001111"


def registered(**fields: Any) -> dict[str, Any]:
    return {
        "accountId": ACCOUNT,
        "email": "admin@example.com",
        "approvers": ["admin@example.com"],
        "quorum": 1,
        "remindAfterSeconds": [],
        "escalateAfterSeconds": None,
        "escalateTo": [],
        "approverPrincipals": [],
        "subscriptionArn": None,
        "updatedAt": "2026-01-02T10:00:00.000Z",
        "updatedBy": "oscar",
        **fields,
    }


POLICY = registered(
    email="ops1@example.com",
    approvers=["ops1@example.com", "ops2@example.com"],
    quorum=2,
    remindAfterSeconds=[3600, 7200],
    escalateAfterSeconds=86400,
    escalateTo=["security@example.com"],
    approverPrincipals=[f"arn:aws:iam::{ACCOUNT}:role/Admin"],
)


def test_put_email_registers_one_administrator(api: FakeApi) -> None:
    api.on("PUT", f"/approvers/{ACCOUNT}", httpx.Response(200, json=registered()))
    result = api.run("approvers", "put", ACCOUNT, "--email", "admin@example.com")
    assert result.exit_code == 0, result.stderr
    assert api.last.method == "PUT" and api.last.url.path == f"/approvers/{ACCOUNT}"
    assert api.body() == {"email": "admin@example.com"}
    assert ACCOUNT in result.stdout and "admin@example.com" in result.stdout


def test_put_a_policy_sends_every_part_of_it(api: FakeApi) -> None:
    api.on("PUT", f"/approvers/{ACCOUNT}", httpx.Response(200, json=POLICY))
    result = api.run(
        "approvers", "put", ACCOUNT,
        "--approver", "ops1@example.com", "--approver", "ops2@example.com", "--quorum", "2",
        "--remind-after", "3600", "--remind-after", "7200",
        "--escalate-after", "86400", "--escalate-to", "security@example.com",
        "--principal", f"arn:aws:iam::{ACCOUNT}:role/Admin",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert api.body() == {
        "approvers": ["ops1@example.com", "ops2@example.com"],
        "quorum": 2,
        "remindAfterSeconds": [3600, 7200],
        "escalateAfterSeconds": 86400,
        "escalateTo": ["security@example.com"],
        "approverPrincipals": [f"arn:aws:iam::{ACCOUNT}:role/Admin"],
    }
    for text in ("ops2@example.com", "3600 s, 7200 s", "after 86400 s", "security@example.com", "role/Admin"):
        assert text in result.stdout, text


def test_put_json_prints_the_policy_as_registered(api: FakeApi) -> None:
    api.on("PUT", f"/approvers/{ACCOUNT}", httpx.Response(200, json=registered(approverPrincipals=["arn:x"])))
    result = api.run(
        "--json", "approvers", "put", ACCOUNT, "--email", "admin@example.com", "--principal", "arn:x"
    )
    assert result.exit_code == 0, result.stderr
    assert api.body() == {"email": "admin@example.com", "approverPrincipals": ["arn:x"]}
    assert json.loads(result.stdout) == registered(approverPrincipals=["arn:x"])


@pytest.mark.parametrize(
    ("args", "says"),
    [
        ((), "either --email"),
        (("--email", "a@x.test", "--approver", "b@x.test"), "either --email"),
        (("--email", "a@x.test", "--quorum", "2"), "need --approver"),
        (("--email", "a@x.test", "--remind-after", "60"), "need --approver"),
        (("--approver", "a@x.test", "--escalate-after", "120"), "go together"),
        (("--approver", "a@x.test", "--escalate-to", "c@x.test"), "go together"),
        (("--approver", "a@x.test", "--remind-after", "59"), "--remind-after"),
        (("--approver", "a@x.test", "--quorum", "0"), "--quorum"),
    ],
)
def test_put_usage_errors_send_nothing(api: FakeApi, args: tuple[str, ...], says: str) -> None:
    result = api.run("approvers", "put", ACCOUNT, *args)
    assert result.exit_code == 2, result.stdout
    assert says in result.stderr
    assert api.requests == []


def test_put_a_bad_account_id_is_a_usage_error(api: FakeApi) -> None:
    result = api.run("approvers", "put", "9999", "--email", "a@x.test")
    assert result.exit_code == 2
    assert "12 digits" in result.stderr
    assert api.requests == []


def test_put_a_policy_the_service_refuses_names_the_field(api: FakeApi) -> None:
    errors = [{"field": "quorum", "message": "must be at most the number of approvers (1)"}]
    api.on("PUT", f"/approvers/{ACCOUNT}", problem(400, "Invalid request", "the policy is not valid", errors))
    result = api.run("approvers", "put", ACCOUNT, "--approver", "a@x.test", "--quorum", "2")
    assert result.exit_code == 1
    assert "quorum: must be at most the number of approvers (1)" in result.stderr


def test_put_by_a_non_operator_is_forbidden(api: FakeApi) -> None:
    api.on("PUT", f"/approvers/{ACCOUNT}", problem(403, "Forbidden", "needs the operators group"))
    result = api.run("approvers", "put", ACCOUNT, "--email", "a@x.test")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: Forbidden (403): needs the operators group")


def test_list_shows_each_account_and_follows_pages_with_all(api: FakeApi) -> None:
    def pages(request: httpx.Request) -> httpx.Response:
        if request.url.params.get("nextToken") == "n1":
            return httpx.Response(200, json={"items": [POLICY]})
        return httpx.Response(200, json={"items": [registered(accountId="111122223333")], "nextToken": "n1"})

    api.on("GET", "/approvers", pages)
    one = api.run("approvers", "list", "--limit", "1")
    assert one.exit_code == 0, one.stderr
    assert dict(api.last.url.params) == {"limit": "1"}
    assert "111122223333" in one.stdout and ACCOUNT not in one.stdout
    assert "--next-token n1" in one.stderr
    every = api.run("--json", "approvers", "list", "--all")
    assert every.exit_code == 0, every.stderr
    assert json.loads(every.stdout) == [registered(accountId="111122223333"), POLICY]
    table = api.run("approvers", "list", "--all")
    for text in ("111122223333", ACCOUNT, "ops2@example.com", "2 accounts"):
        assert text in table.stdout, text
