"""Approval links over the fakes: the first link, the requester's resend, the email."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from account_connections.api.problems import status_of
from account_connections.domain.audit import EventType
from account_connections.domain.connection import Connection, ConnectionSecrets, ShownRequest
from account_connections.domain.errors import (
    ConnectionAlreadyDecided,
    ConnectionNotFound,
    DecisionNotReady,
    DomainError,
    TooManyLinks,
    VerificationTokenGone,
)
from account_connections.domain.registry import Approver
from account_connections.domain.statuses import ConnectionStatus
from account_connections.domain.tokens import TokenState, hash_token
from account_connections.logic.approval import view_page
from account_connections.logic.authority import Decider, proof_notice
from account_connections.logic.links import compose_email, resend_link
from account_connections.logic.registry import delete_approver
from tests.builders import (
    ACCOUNT,
    ADMIN_EMAIL,
    BASE_URL,
    OTHER_SPACE,
    SPACE,
    LinkClock,
    connection,
    token_for,
)
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
    assert (secrets.links, secrets.task_token, secrets.verify_base_url) == (
        {ADMIN_EMAIL: hash_token(email.token)}, "task-1", BASE_URL,
    )  # fmt: skip
    assert email.recipients == (ADMIN_EMAIL,)
    sent = [e for e in world.connections.events if e.type == EventType.LINK_SENT]
    assert [(e.actor, e.detail) for e in sent] == [("system", f"link emailed to {ADMIN_EMAIL}")]


def test_a_resend_sends_a_new_link_and_the_old_one_dies(world: World, link_clock: LinkClock) -> None:
    created, first = world.waiting()
    link_clock.advance()
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
    assert world.connections.events[-1].detail == (
        f"new link emailed to {ADMIN_EMAIL}; the previous one no longer works"
    )


def test_a_resend_after_the_policy_was_withdrawn_and_registered_again_goes_to_the_new_approver(
    world: World, link_clock: LinkClock
) -> None:
    created, _ = world.waiting()
    link_clock.advance()
    # Given the account's administrator was unregistered since (the links withdrawn)
    delete_approver(world.registry, world.subscriptions, world.connections, OSCAR, ACCOUNT)
    assert world.connections.secrets(created.connectionId).links == {}
    # And another registered by hand (no renewal ran)
    at = "2026-11-02T00:00:00.000Z"
    world.registry.put_approver(
        Approver(accountId=ACCOUNT, email="new@example.com", updatedAt=at, updatedBy="o")
    )
    resend_link(world.connections, world.registry, world.mailer, ALICE, SPACE, created.connectionId)
    # Then the new link goes to the address registered now
    token = world.tokens.get(hash_token(world.mailer.emails[-1].token))
    assert token is not None and token.approverEmail == "new@example.com"
    assert world.mailer.emails[-1].recipients == ("new@example.com",)


def _resend(world: World, connection_id: str) -> None:
    resend_link(world.connections, world.registry, world.mailer, BOB, SPACE, connection_id)


def test_a_resend_within_a_minute_of_the_last_link_is_refused_and_changes_nothing(
    world: World, link_clock: LinkClock
) -> None:
    # Given the first link went out 20 seconds ago
    created, first = world.waiting()
    link_clock.advance(timedelta(seconds=20))
    tokens, events = dict(world.tokens.stored), list(world.connections.events)
    secrets = world.connections.secrets(created.connectionId)
    # When bob asks for another Then he is told when he may (429, Retry-After), and nothing changed
    with pytest.raises(TooManyLinks) as refused:
        _resend(world, created.connectionId)
    assert (status_of(refused.value), refused.value.retry_after) == (429, 40)
    assert "try again in 40 seconds" in refused.value.detail
    assert world.mailer.emails == [first] and world.tokens.stored == tokens
    assert world.connections.events == events and world.connections.secrets(created.connectionId) == secrets
    # A minute after the first link a resend goes, and the minute starts again from it
    link_clock.advance(timedelta(seconds=40))
    _resend(world, created.connectionId)
    assert len(world.mailer.emails) == 2
    link_clock.advance(timedelta(seconds=59))
    with pytest.raises(TooManyLinks) as again:
        _resend(world, created.connectionId)
    assert again.value.retry_after == 1


def test_a_request_gets_ten_links_in_all_the_first_one_included(world: World, link_clock: LinkClock) -> None:
    created, _ = world.waiting()
    for _ in range(9):
        link_clock.advance()
        _resend(world, created.connectionId)
    assert len(world.mailer.emails) == 10
    # However long bob waits, no eleventh link: there is no time to retry at
    link_clock.advance(timedelta(days=1))
    with pytest.raises(TooManyLinks) as refused:
        _resend(world, created.connectionId)
    assert (status_of(refused.value), refused.value.retry_after) == (429, None)
    assert "10 links" in refused.value.detail
    assert len(world.mailer.emails) == 10
    sent = [event for event in world.connections.events if event.type == EventType.LINK_SENT]
    assert len(sent) == 10


def test_the_workflows_first_link_is_never_refused(world: World, link_clock: LinkClock) -> None:
    # Given a request whose links are all used (the notify step retried after ten resends, say)
    created, _ = world.waiting()
    for _ in range(9):
        link_clock.advance()
        _resend(world, created.connectionId)
    # When the notify step sends its link at once Then it goes: the workflow must reach the approver
    world.notify(created.connectionId, task_token="task-2")
    assert len(world.mailer.emails) == 11


def _waiting_store(status: ConnectionStatus, **fields: Any) -> tuple[InMemoryConnections, Connection]:
    """A request whose workflow waits with task-1, seeded in ``status``."""
    stored = connection(status, **fields)
    _, link = token_for(stored, task_token="task-1")
    store = InMemoryConnections()
    secrets = ConnectionSecrets(
        task_token="task-1", verify_base_url=BASE_URL, links={ADMIN_EMAIL: link.tokenHash}
    )
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
    link_hash = store.secrets(stored.connectionId).links[ADMIN_EMAIL]
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


PHISHING = (
    "line1\n\nTo verify or reject the request, open this link:\n\n  https://evil.example/verify?token=abc"
)
LINK = f"{BASE_URL}/verify?token=abc"


def _quoted_block(body: str, label: str) -> list[str]:
    """The ``> `` lines right under the service's ``label`` line."""
    lines = body.splitlines()
    start = lines.index(label) + 1
    block = []
    for line in lines[start:]:
        if not line.startswith("> "):
            break
        block.append(line.removeprefix("> "))
    return block


def test_everything_the_requester_wrote_is_a_quoted_block_under_a_label_of_the_service() -> None:
    asked = connection(
        display_name="Prod <b>&amp;</b>", requested_by="alice\nhttps://evil.example/x",
        role_arns=["arn:aws:iam::111122223333:role/R", "arn:aws:iam::111122223333:role/https://evil.example/S"],
    )  # fmt: skip
    asked = asked.model_copy(update={"description": PHISHING})
    email = compose_email(asked, LINK)
    # Each value, verbatim (plain text: nothing escaped), as its own block of "> " lines
    assert _quoted_block(email.body, "Display name:") == ["Prod <b>&amp;</b>"]
    assert _quoted_block(email.body, "Description:") == PHISHING.split("\n")
    assert _quoted_block(email.body, "Requested by:") == ["alice", "https://evil.example/x"]
    assert _quoted_block(email.body, "Roles to attach once verified:") == asked.roleArns
    assert "&lt;" not in email.body
    # The service's own link is the only line outside a quote that starts with a URL
    unquoted = [line.strip() for line in email.body.splitlines() if not line.startswith(">")]
    assert [line for line in unquoted if line.startswith(("http:", "https:"))] == [LINK]
    assert not any("evil.example" in line for line in unquoted)
    # And the subject carries none of it
    assert email.subject == f"Approve connecting AWS account {ACCOUNT} to space {SPACE}"


@pytest.mark.parametrize("separator", ["\r", "\r\n", "\x0b", "\x0c", "\x1c", "\x85", "\u2028", "\u2029"])
def test_every_kind_of_line_break_stays_inside_the_quote(separator: str) -> None:
    # The input rules refuse these; the email must not depend on it
    asked = connection().model_copy(
        update={"description": f"a{separator}https://evil.example/verify?token=x"}
    )
    body = compose_email(asked, LINK).body
    assert _quoted_block(body, "Description:") == ["a", "https://evil.example/verify?token=x"]
    assert not any(char in body for char in separator if char != "\n")  # lines are joined by "\n"


def test_an_email_without_description_or_roles_says_so_in_its_own_words() -> None:
    email = compose_email(connection(), LINK)
    asked = connection().model_copy(update={"description": None})
    body = compose_email(asked, LINK).body
    assert "Description: none given" in body and "Roles to attach once verified: none" in body
    assert _quoted_block(email.body, "Description:") == ["Deploy target for the web app"]


def test_the_notice_of_a_decision_by_proof_quotes_the_requester_too() -> None:
    asked = connection(requested_by="alice\nhttps://evil.example/verify?token=x")
    who = Decider("arn:aws:sts::111122223333:assumed-role/Admin/admin", "ACCOUNT_PROOF")
    _, body = proof_notice(ShownRequest.of(asked), "approve", who, "2026-12-01T00:00:00.000Z")
    assert [line for line in body.splitlines() if "alice" in line or "evil" in line] == [
        "> alice", "> https://evil.example/verify?token=x",
    ]  # fmt: skip
