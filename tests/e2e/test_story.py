"""The whole story a new user follows in docs/local-stack.md, with the administrator's click
made in a real browser."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from local.seed_data import (
    ADMIN_ACCOUNT,
    ADMIN_EMAIL,
    AUDITOR,
    REQUESTER,
    SPACE_ID,
    TRUSTED_ROLE,
    UNTRUSTED_ROLE,
)
from tests.e2e.client import StackClient

pytestmark = pytest.mark.e2e

ACCOUNT = ADMIN_ACCOUNT
BUILD_ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/{TRUSTED_ROLE}"
UNTRUSTED_ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/{UNTRUSTED_ROLE}"


def test_requested_connection_is_verified_by_the_administrator_in_a_browser(
    client: StackClient, browser_context: Any
) -> None:
    # Given alice, SPACE_ADMIN of the seeded space, asks to connect the seeded account
    marker = f"Production {uuid.uuid4().hex[:8]}"
    created = client.create_connection(
        REQUESTER, SPACE_ID, ACCOUNT, displayName=marker, description="Deploy target <b>web</b>",
        roleArns=[BUILD_ROLE_ARN, UNTRUSTED_ROLE_ARN],
    )  # fmt: skip
    assert created.status == 201, created.text
    connection = created.json()
    assert connection["status"] == "PENDING_APPROVAL"
    assert connection["connectionToken"]

    # When the administrator's email arrives and they open its link in a browser
    email = client.email_about(marker)
    assert email["to"] == ADMIN_EMAIL
    assert ACCOUNT in email["subject"]
    link = email["links"][0]
    assert link.startswith(f"{client.base_url}/verify?token=")
    page = browser_context.new_page()
    try:
        page.goto(link)
        page.get_by_text(marker).first.wait_for()
        assert "Deploy target <b>web</b>" in page.inner_text("body")  # shown as text, not markup
        assert TRUSTED_ROLE in page.inner_text("body")
        # and tick "Authorize paid tiers", then press "Verify space"
        page.get_by_label("Authorize paid tiers").check()
        page.get_by_role("button", name="Verify space").click()
        page.get_by_text("You verified the space").wait_for()
        assert "Paid tiers: authorized" in page.inner_text("body")
    finally:
        page.close()

    # Then the workflow verifies the connection and attaches only the role that trusts the runner
    verified = client.wait_for_status(SPACE_ID, connection["connectionId"], "VERIFIED")
    assert verified["paidTiersAuthorized"] is True
    assert verified["decidedBy"] == ADMIN_EMAIL
    assert verified["verifiedAt"]
    roles = {role["roleName"]: role for role in verified["roles"]}
    assert roles[TRUSTED_ROLE]["attached"] is True
    assert roles[UNTRUSTED_ROLE]["attached"] is False
    assert "trust" in roles[UNTRUSTED_ROLE]["reason"]
    assert [event["toStatus"] for event in verified["history"] if event["toStatus"]][-1] == "VERIFIED"

    # and the link is spent
    assert client.request("GET", link).status == 410

    # and an auditor finds it, with its history
    audit = client.request("GET", f"/audit/connections?accountId={ACCOUNT}&status=VERIFIED", user=AUDITOR)
    assert audit.status == 200, audit.text
    assert connection["connectionId"] in [item["connectionId"] for item in audit.json()["items"]]
    events = client.request("GET", f"/audit/events?connectionId={connection['connectionId']}", user=AUDITOR)
    assert events.status == 200, events.text
    assert {REQUESTER, ADMIN_EMAIL} <= {event["actor"] for event in events.json()["items"]}

    # and the requester can disconnect it, which frees the account for a new request
    disconnected = client.request(
        "DELETE", f"/spaces/{SPACE_ID}/connections/{connection['connectionId']}", user=REQUESTER
    )
    assert disconnected.status == 200, disconnected.text
    assert disconnected.json()["status"] == "DISCONNECTED"
