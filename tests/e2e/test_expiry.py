"""A request nobody decides expires with the approval window (the template's minimum, 60 s)."""

from __future__ import annotations

import time

import pytest

from tests.e2e.conftest import SHORT_WINDOW_SECONDS, ExpiringConnection

pytestmark = pytest.mark.e2e


def test_undecided_request_expires_and_its_link_dies(expiring_connection: ExpiringConnection) -> None:
    # Given a request made on a stack whose approval window is 60 s (made in the background)
    prepared = expiring_connection
    client = prepared.client
    connection_id = prepared.connection["connectionId"]
    remaining = SHORT_WINDOW_SECONDS - (time.monotonic() - prepared.created_at)
    if remaining > 5:  # the other tests may have used up the window already
        assert client.request("GET", prepared.link).status == 200

    # When nobody decides within the window
    expired = client.wait_for_status(
        prepared.space_id, connection_id, "EXPIRED", timeout=max(remaining, 0) + 45
    )

    # Then the request is expired, and its link says so
    assert expired["decidedBy"] is None
    gone = client.request("GET", prepared.link)
    assert gone.status == 410
    assert "expired" in gone.text.lower()
    late = client.request("POST", "/verify", json_body={"token": prepared.link.split("token=")[1],
                                                        "decision": "approve"})  # fmt: skip
    assert late.status == 410
