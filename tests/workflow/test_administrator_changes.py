"""An account's administrator changed or removed while a request waits (SPEC.md, HTTP API,
Operators): the live link dies, the administrator registered now gets a new one, and the
workflow, still waiting on the same task, is decided through it."""

from __future__ import annotations

from typing import Any

from account_connections.domain.statuses import ConnectionStatus
from tests.support import FakeContext, http_event, load_handler
from tests.workflow.conftest import Stack

NEW_ADMIN = "new-admin@example.com"


def _operator(name: str, **overrides: Any) -> dict[str, Any]:
    return load_handler("administer_spaces").handler(http_event(name, **overrides), FakeContext())  # type: ignore[no-any-return]


def test_a_new_administrators_link_decides_the_waiting_request(stack: Stack) -> None:
    # Given a request waiting on its administrator's link
    connection_id, _ = stack.request()
    old = stack.wait_for_email()
    # When an operator gives the account to another address
    assert _operator("http_put_approver", body={"email": NEW_ADMIN})["statusCode"] == 200
    # Then the old link is gone (replaced) and the new one, for the same waiting task, decides
    new = stack.wait_for_email(2)
    assert new.token != old.token
    gone = stack.page(old.token)
    assert gone["statusCode"] == 410 and "A newer link was sent" in gone["body"]
    assert stack.approve(new.token)["statusCode"] == 200
    assert stack.wait_for_end(connection_id)["status"] == "SUCCEEDED"
    connection = stack.connections.get(connection_id)
    assert (connection.status, connection.decidedBy) == (ConnectionStatus.VERIFIED, NEW_ADMIN)


def test_a_removed_administrators_link_dies_and_the_request_waits_for_the_next(stack: Stack) -> None:
    # Given a request waiting on its administrator's link
    connection_id, _ = stack.request()
    old = stack.wait_for_email()
    # When the administrator is unregistered, the link answers 410 and the request still waits
    assert _operator("http_delete_approver")["statusCode"] == 204
    assert stack.page(old.token)["statusCode"] == 410
    assert stack.connections.get(connection_id).status == ConnectionStatus.PENDING_APPROVAL
    # When the next administrator is registered, their link decides it
    assert _operator("http_put_approver", body={"email": NEW_ADMIN})["statusCode"] == 200
    new = stack.wait_for_email(2)
    answer = stack.decide_form(new.token, {"decision": "reject", "reason": "not this account"})
    assert answer["statusCode"] == 200
    assert stack.wait_for_end(connection_id)["status"] == "SUCCEEDED"
    connection = stack.connections.get(connection_id)
    assert (connection.status, connection.decidedBy) == (ConnectionStatus.REJECTED, NEW_ADMIN)
