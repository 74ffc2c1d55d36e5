"""Approval links over the fakes: the first link, the requester's resend, the email."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from account_connections.api.problems import status_of
from account_connections.domain.audit import EventType
from account_connections.domain.connection import Connection, ConnectionSecrets
from account_connections.domain.errors import (
    ConnectionAlreadyDecided,
    ConnectionNotFound,
    DecisionNotReady,
    DomainError,
    VerificationTokenGone,
)
from account_connections.domain.statuses import ConnectionStatus
from account_connections.domain.tokens import TokenState, hash_token
from account_connections.logic.approval import view_page
from account_connections.logic.links import compose_email, resend_link
from account_connections.logic.registry import delete_approver
from tests.builders import ACCOUNT, ADMIN_EMAIL, BASE_URL, OTHER_SPACE, SPACE, connection, token_for
from tests.fakes import FakeMailer, InMemoryConnections, InMemoryRegistry
from tests.unit.world import ALICE, BOB, OSCAR, World


def test_the_first_link_is_emailed_and_the_task_token_stays_on_the_server(world: World) -> None:
    # When the workflow's notify step sends the first link
    created, email = world.waiting()
    # Then the account's administrator gets a link on the deployment's base URL
    assert email.account_id == ACCOUNT
    assert email.subject == f"Approve connecting AWS account {ACCOUNT} to space {SPACE}"
    assert f"{BASE_URL}/verify?token=" in email.body and "task-1" not in email.body
    # And the link's record keeps what a decision needs, the connection token its copies
    link = world.tokens.get(hash_token(email.token))
    assert link is not None and link.state == TokenState.ACTIVE
    assert (link.taskToken, link.approverEmail) == ("task-1", ADMIN_EMAIL) and link.csrfSecret
    held = world.tokens.get(hash_token(created.connectionToken))
    assert held is not None and (held.taskToken, held.csrfSecret) == ("task-1", link.csrfSecret)
    _, secrets = world.connections.read(created.connectionId)
    assert (secrets.link_token_hash, secrets.task_token, secrets.verify_base_url) == (
        hash_token(email.token), "task-1", BASE_URL,
    )  # fmt: skip
    sent = [e for e in world.connections.events if e.type == EventType.LINK_SENT]
    assert [(e.actor, e.detail) for e in sent] == [("system", "link emailed")]


def test_a_resend_sends_a_new_link_and_the_old_one_dies(world: World) -> None:
    created, first = world.waiting()
    # When bob asks for a new link
    sent = resend_link(world.connections, world.registry, world.mailer, BOB, SPACE, created.connectionId)
    # Then a second email goes out with another link, and the first link answers 410 "replaced"
    assert (sent.connectionId, sent.status, sent.expiresAt) == (
        created.connectionId, ConnectionStatus.PENDING_APPROVAL, created.expiresAt,
    )  # fmt: skip
    second = world.mailer.emails[-1]
    assert len(world.mailer.emails) == 2 and second.token != first.token
    with pytest.raises(VerificationTokenGone) as gone:
        view_page(world.connections, world.tokens, first.token)
    assert (gone.value.reason, status_of(gone.value)) == ("replaced", 410)
    retired = world.tokens.get(hash_token(first.token))
    assert retired is not None and (retired.taskToken, retired.csrfSecret) == (None, None)
    # The new link works, for the same waiting workflow
    assert view_page(world.connections, world.tokens, second.token).csrf
    new = world.tokens.get(hash_token(second.token))
    assert new is not None and new.taskToken == "task-1"
    assert world.connections.events[-1].actor == "bob"
    assert world.connections.events[-1].detail == "new link emailed; the previous one no longer works"


def test_a_resend_goes_to_the_administrator_registered_now(world: World) -> None:
    created, _ = world.waiting()
    # Given the account's administrator was unregistered since
    delete_approver(world.registry, world.subscriptions, world.connections, OSCAR, ACCOUNT)
    resend_link(world.connections, world.registry, world.mailer, ALICE, SPACE, created.connectionId)
    # Then the new link names no address (a decision through it is by the account's administrator)
    token = world.tokens.get(hash_token(world.mailer.emails[-1].token))
    assert token is not None and token.approverEmail is None


def _waiting_store(status: ConnectionStatus, **fields: Any) -> tuple[InMemoryConnections, Connection]:
    """A request whose workflow waits with task-1, seeded in ``status``."""
    stored = connection(status, **fields)
    _, link = token_for(stored, task_token="task-1")
    store = InMemoryConnections()
    secrets = ConnectionSecrets(task_token="task-1", verify_base_url=BASE_URL, link_token_hash=link.tokenHash)
    store.seed(stored, secrets)
    store.tokens.stored[link.tokenHash] = link
    return store, stored


@pytest.mark.parametrize(
    ("status", "fields", "space_id", "error", "code"),
    [
        (ConnectionStatus.APPROVED, {}, SPACE, ConnectionAlreadyDecided, 409),
        (ConnectionStatus.CANCELLED, {}, SPACE, ConnectionAlreadyDecided, 409),
        (ConnectionStatus.PENDING_APPROVAL, {"expires_in": -timedelta(seconds=1)}, SPACE,
         ConnectionAlreadyDecided, 409),
        (ConnectionStatus.PENDING_APPROVAL, {}, OTHER_SPACE, ConnectionNotFound, 404),
    ],
    ids=["approved", "cancelled", "window-closed", "another-space"],
)  # fmt: skip
def test_no_resend_for_a_request_that_cannot_be_decided(
    status: ConnectionStatus, fields: dict[str, Any], space_id: str, error: type[DomainError], code: int
) -> None:
    store, stored = _waiting_store(status, **fields)
    link_hash = store.secrets(stored.connectionId).link_token_hash
    mailer = FakeMailer()
    with pytest.raises(error) as refused:
        resend_link(store, InMemoryRegistry(), mailer, ALICE, space_id, stored.connectionId)
    assert status_of(refused.value) == code
    assert mailer.emails == [] and list(store.tokens.stored) == [link_hash] and store.events == []


def test_no_resend_before_the_first_link_is_out(world: World) -> None:
    created = world.request()
    with pytest.raises(DecisionNotReady) as refused:
        resend_link(world.connections, world.registry, world.mailer, ALICE, SPACE, created.connectionId)
    assert status_of(refused.value) == 409 and "try again" in refused.value.detail
    assert world.mailer.emails == []


def test_the_email_escapes_what_the_requester_wrote_and_keeps_it_out_of_the_subject() -> None:
    asked = connection(
        display_name="<img src=x onerror=alert(1)>", role_arns=["arn:aws:iam::111122223333:role/R"]
    )
    email = compose_email(asked, f"{BASE_URL}/verify?token=abc")
    assert "<img" not in email.body and "&lt;img src=x onerror=alert(1)&gt;" in email.body
    assert "img" not in email.subject and len(email.subject) <= 99
    assert f"  {BASE_URL}/verify?token=abc" in email.body
    assert "    - arn:aws:iam::111122223333:role/R" in email.body
    assert compose_email(connection(), "link").body.count("(none)") == 1  # no roles asked
