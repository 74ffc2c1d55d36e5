"""Decisions and refusals over plain HTTP: rejection through the page's form, and requesters
or requests that the service must turn away without changing anything."""

from __future__ import annotations

import html
import re
import uuid

import pytest

from local.seed_data import (
    ADMIN_ACCOUNT,
    LIMITED_USER,
    POWER_USER,
    REQUESTER,
    SPACE_ID,
    UNREGISTERED_ACCOUNT,
)
from tests.e2e.client import StackClient

pytestmark = pytest.mark.e2e

ACCOUNT = ADMIN_ACCOUNT


def _hidden(page: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert found, f"no hidden field {name}"
    return html.unescape(found.group(1))


def test_administrator_rejects_with_a_reason(client: StackClient) -> None:
    # Given a pending request in a space of its own
    space = client.new_space({POWER_USER: "POWER_USER"})
    marker = f"Reject me {uuid.uuid4().hex[:8]}"
    created = client.create_connection(POWER_USER, space, ACCOUNT, displayName=marker)
    assert created.status == 201, created.text
    connection_id = created.json()["connectionId"]
    link = client.email_about(marker)["links"][0]

    # When the administrator submits the page's form with "Reject" and a reason
    page = client.request("GET", link)
    assert page.status == 200
    assert page.headers["Cache-Control"] == "no-store"
    form = {
        "token": _hidden(page.text, "token"),
        "csrf": _hidden(page.text, "csrf"),
        "decision": "reject",
        "reason": "Not our account <script>",
    }
    result = client.request("POST", "/verify", form=form)

    # Then the request is rejected with that reason, and the link is spent
    assert result.status == 200, result.text
    assert "You rejected the request" in result.text
    assert "&lt;script&gt;" in result.text and "<script>" not in result.text
    rejected = client.wait_for_status(space, connection_id, "REJECTED", user=POWER_USER)
    assert rejected["reason"] == "Not our account <script>"
    assert client.request("GET", link).status == 410
    again = client.request("POST", "/verify", form={**form, "decision": "approve"})
    assert again.status in (409, 410)
    assert client.connection(space, connection_id, POWER_USER)["status"] == "REJECTED"


def test_limited_access_member_cannot_request_a_connection(client: StackClient) -> None:
    emails_before = len(client.outbox())
    refused = client.create_connection(LIMITED_USER, SPACE_ID, ACCOUNT, displayName="Carol's attempt")
    assert refused.status == 403, refused.text
    assert refused.headers["Content-Type"].startswith("application/problem+json")
    assert refused.json()["status"] == 403
    # carol may still read the space's connections, and nothing was sent
    assert client.request("GET", f"/spaces/{SPACE_ID}/connections", user=LIMITED_USER).status == 200
    assert len(client.outbox()) == emails_before


def test_requests_without_a_valid_token_are_refused_by_the_authorizer(client: StackClient) -> None:
    assert client.request("GET", f"/spaces/{SPACE_ID}/connections").status == 401
    forged = client.request(
        "GET", f"/spaces/{SPACE_ID}/connections", headers={"Authorization": "Bearer a.b.c"}
    )
    assert forged.status == 401
    assert forged.json() == {"message": "Unauthorized"}
    assert client.request("GET", "/health").status == 200  # Authorizer: NONE


def test_account_without_an_administrator_is_refused(client: StackClient) -> None:
    space = client.new_space({REQUESTER: "SPACE_ADMIN"})
    refused = client.create_connection(REQUESTER, space, UNREGISTERED_ACCOUNT, displayName="Nobody approves")
    assert refused.status == 422, refused.text
