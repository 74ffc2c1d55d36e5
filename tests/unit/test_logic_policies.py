"""Approval policies at work, over the fakes: each approver's own link, the quorum reached exactly
once in either order, one decision per approver, one rejection rejecting, the workflow's rounds
(reminders replacing links, the escalation whose approvers then count), a policy change starting
a new round, and everyone told how it ended."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Literal, TypeAlias

import pytest

from account_connections.api.problems import status_of
from account_connections.domain.audit import EventType
from account_connections.domain.connection import DecisionRequest
from account_connections.domain.errors import ConnectionAlreadyDecided, VerificationTokenGone
from account_connections.domain.policy import Timer, timers
from account_connections.domain.proof import CallerIdentity
from account_connections.domain.registry import Approver, PutApproverRequest
from account_connections.domain.statuses import ConnectionStatus
from account_connections.domain.tokens import TokenState, hash_token
from account_connections.logic import backoff
from account_connections.logic.approval import DecisionOutcome, decide, view_page
from account_connections.logic.connections import cancel_connection
from account_connections.logic.registry import delete_approver, put_approver
from account_connections.steps.contract import RecordOutcomeInput
from account_connections.steps.record_outcome import record_outcome
from tests.builders import ACCOUNT, SPACE, LinkClock
from tests.fakes import Email, FakeProofVerifier, fake_proof
from tests.unit.world import ALICE, OSCAR, STAMP, World

S: TypeAlias = ConnectionStatus
OPS1, OPS2, OPS3, BACKUP = "ops1@example.com", "ops2@example.com", "ops3@example.com", "backup@example.com"
REMIND = Timer(number=1, seconds=3600, remind=True)
ESCALATE = Timer(number=2, seconds=3600, escalate=True)


def _policy(world: World, **policy: Any) -> None:
    world.registry.put_approver(Approver(accountId=ACCOUNT, **{"approvers": [OPS1, OPS2], **policy}, **STAMP))


def _decide(
    world: World, token: str, decision: Literal["approve", "reject"] = "approve", **fields: Any
) -> DecisionOutcome:
    ports = world.connections, world.tokens, world.workflow, world.proofs, world.mailer
    return decide(*ports, DecisionRequest(token=token, decision=decision, **fields), csrf=None, form=False)


def _link_of(world: World, address: str) -> Email:
    """The last approval email ``address`` received."""
    return [email for email in world.mailer.to(address) if "/verify?token=" in email.body][-1]


@pytest.fixture
def quorum(world: World) -> World:
    _policy(world, quorum=2)
    return world


def test_each_approver_gets_a_link_of_their_own(quorum: World) -> None:
    created, _ = quorum.waiting()
    one, two = _link_of(quorum, OPS1), _link_of(quorum, OPS2)
    assert one.token != two.token and one.recipients == (OPS1,) and two.recipients == (OPS2,)
    assert "approved once 2 approvers have approved it" in one.body
    sent = [e for e in quorum.connections.events if e.type == EventType.LINK_SENT]
    assert sorted(e.detail or "" for e in sent) == [f"link emailed to {OPS1}", f"link emailed to {OPS2}"]
    assert quorum.connections.get(created.connectionId).quorum == 2


@pytest.mark.parametrize("order", [(OPS1, OPS2), (OPS2, OPS1)])
def test_the_quorum_is_reached_by_two_approvers_in_either_order(
    quorum: World, order: tuple[str, str]
) -> None:
    created, _ = quorum.waiting()
    first, second = order
    # The first approval counts and the request waits: the workflow is not answered yet
    counted = _decide(quorum, _link_of(quorum, first).token, authorizePaidTiers=True)
    assert (counted.status, [a.approver for a in counted.approvals]) == (S.PENDING_APPROVAL, [first])
    assert quorum.workflow.succeeded == [] and quorum.connections.transitions == []
    # The page of the other approver shows who has approved so far
    view = view_page(quorum.connections, quorum.tokens, _link_of(quorum, second).token)
    assert [a.approver for a in view.connection.approvals] == [first]
    # The second reaches the quorum: APPROVED once, in the same write, and the workflow told once
    decided = _decide(quorum, _link_of(quorum, second).token)
    assert decided.status == S.APPROVED
    assert [a.approver for a in decided.approvals] == [first, second]
    assert quorum.connections.transitions == [S.APPROVED]
    assert [token for token, _ in quorum.workflow.succeeded] == ["task-1"]
    # Paid tiers only when every approval authorized them
    stored = quorum.connections.get(created.connectionId)
    assert (stored.paidTiersAuthorized, stored.decidedBy) == (False, second)
    types = [e.type for e in quorum.connections.events if e.type != EventType.LINK_SENT]
    assert types == [EventType.REQUESTED, EventType.APPROVAL_RECORDED, EventType.APPROVAL_RECORDED,
                     EventType.STATUS_CHANGED]  # fmt: skip
    assert all(e.decisionMethod == "EMAIL_LINK" for e in quorum.connections.events
               if e.type == EventType.APPROVAL_RECORDED)  # fmt: skip


def test_an_approver_decides_once(quorum: World) -> None:
    quorum.waiting()
    token = _link_of(quorum, OPS1).token
    _decide(quorum, token)
    for decision in ("approve", "reject"):
        with pytest.raises(ConnectionAlreadyDecided) as refused:
            _decide(quorum, token, decision, reason="changed my mind")  # type: ignore[arg-type]
        assert status_of(refused.value) == 409
    assert quorum.connections.transitions == []


def test_one_rejection_after_an_approval_rejects(quorum: World) -> None:
    created, _ = quorum.waiting()
    _decide(quorum, _link_of(quorum, OPS1).token)
    rejected = _decide(quorum, _link_of(quorum, OPS2).token, "reject", reason="not this account")
    assert rejected.status == S.REJECTED
    assert quorum.connections.transitions == [S.REJECTED]
    assert quorum.workflow.failed == [("task-1", "Rejected", "not this account")]
    # The one who approved can no longer decide anything
    with pytest.raises((ConnectionAlreadyDecided, VerificationTokenGone)):
        _decide(quorum, _link_of(quorum, OPS1).token)


def test_account_proofs_count_for_the_principal_they_prove(quorum: World) -> None:
    created, _ = quorum.waiting()
    role = "arn:aws:sts::111122223333:assumed-role/{}/session"
    proof = fake_proof(created.connectionId)
    # One principal through the connection token: one approval, the token still works for others
    quorum.proofs = proofs = FakeProofVerifier(CallerIdentity(ACCOUNT, role.format("Admin"), "AROA1:s"))
    assert _decide(quorum, created.connectionToken, accountProof=proof).status == S.PENDING_APPROVAL
    # The same role again, in another session, is the same approver
    proofs.identity = CallerIdentity(ACCOUNT, role.format("Admin").replace("session", "other"), "x")
    with pytest.raises(ConnectionAlreadyDecided):
        _decide(quorum, created.connectionToken, accountProof=proof)
    # Another principal reaches the quorum
    proofs.identity = CallerIdentity(ACCOUNT, role.format("Security"), "AROA2:s")
    decided = _decide(quorum, created.connectionToken, accountProof=proof)
    assert decided.status == S.APPROVED and decided.decisionMethod == "ACCOUNT_PROOF"
    # The approvers were told of each decision that did not come through their links
    notices = [e for e in quorum.mailer.emails if "account proof" in e.subject]
    assert len(notices) == 2 and all(set(e.recipients) == {OPS1, OPS2} for e in notices)


def test_racing_approvals_of_a_stale_read_are_read_again_and_reach_the_quorum_once(
    quorum: World, pauses: list[float]
) -> None:
    # Given ops2's approval is written right after ops1's reads the connection (both saw two needed)
    created, _ = quorum.waiting()
    ops2 = _link_of(quorum, OPS2).token
    store = quorum.connections
    real_read = store.read
    raced = False

    def read(connection_id: str) -> Any:
        nonlocal raced
        seen = real_read(connection_id)
        if not raced:
            raced = True
            _decide(quorum, ops2)
        return seen

    store.read = read  # type: ignore[method-assign]
    decided = _decide(quorum, _link_of(quorum, OPS1).token)
    # Then ops1's write lost (two were no longer needed), read again, and was the last
    assert decided.status == S.APPROVED and store.transitions == [S.APPROVED]
    assert sorted(a.approver for a in decided.approvals) == [OPS1, OPS2]
    assert len(quorum.workflow.succeeded) == 1
    # And it paused before it read again, as long as the first lost race's jitter drew
    assert len(pauses) == 1 and 0 <= pauses[0] <= backoff.bound(1)


# ---- the workflow's rounds ------------------------------------------------------------------------


def test_a_reminder_replaces_the_links_of_those_who_have_not_decided(
    quorum: World, link_clock: LinkClock
) -> None:
    created, _ = quorum.waiting()
    first_ops1, first_ops2 = _link_of(quorum, OPS1), _link_of(quorum, OPS2)
    _decide(quorum, first_ops1.token)
    # When the reminder's timer fires and the workflow waits anew with task-2
    quorum.notify(created.connectionId, "task-2", REMIND)
    # Then only ops2, who has not decided, gets a new link; the old one dies
    reminder = _link_of(quorum, OPS2)
    assert reminder.token != first_ops2.token and reminder.subject.startswith("Reminder:")
    assert len([e for e in quorum.mailer.to(OPS1) if "/verify?token=" in e.body]) == 1
    with pytest.raises(VerificationTokenGone) as gone:
        view_page(quorum.connections, quorum.tokens, first_ops2.token)
    assert gone.value.reason == "replaced"
    link = quorum.tokens.get(hash_token(reminder.token))
    assert link is not None and link.taskToken == "task-2"
    reminded = [e for e in quorum.connections.events if e.type == EventType.REMINDED]
    assert [e.detail for e in reminded] == [
        f"reminder with a new link emailed to {OPS2}; the previous link no longer works"
    ]
    # And its approval reaches the quorum and answers the workflow's new wait
    assert _decide(quorum, reminder.token).status == S.APPROVED
    assert [token for token, _ in quorum.workflow.succeeded] == ["task-2"]


def test_the_escalation_reaches_the_backup_who_then_decides(world: World) -> None:
    _policy(world, approvers=[OPS1], escalateAfterSeconds=3600, escalateTo=[BACKUP])
    created, first = world.waiting()
    assert world.mailer.to(BACKUP) == []
    # When the escalation's timer fires
    world.notify(created.connectionId, "task-2", ESCALATE)
    # Then the backup gets a link and counts as an approver; ops1's link lives on with the new task token
    escalated = _link_of(world, BACKUP)
    assert "escalated to you" in escalated.body
    kept = world.tokens.get(hash_token(first.token))
    assert kept is not None and (kept.state, kept.taskToken) == (TokenState.ACTIVE, "task-2")
    assert [e.type for e in world.connections.events][-2:] == [EventType.LINK_SENT, EventType.ESCALATED]
    decided = _decide(world, escalated.token)
    assert (decided.status, decided.decidedBy) == (S.APPROVED, BACKUP)
    assert [token for token, _ in world.workflow.succeeded] == ["task-2"]


def test_a_reminder_after_the_escalation_reminds_the_backup_too(world: World, link_clock: LinkClock) -> None:
    _policy(world, approvers=[OPS1], escalateAfterSeconds=60, escalateTo=[BACKUP], remindAfterSeconds=[120])
    created, _ = world.waiting()
    world.notify(created.connectionId, "task-2", Timer(number=1, seconds=60, escalate=True))
    link_clock.advance()
    world.notify(created.connectionId, "task-3", Timer(number=2, seconds=60, remind=True))
    assert len(world.mailer.to(BACKUP)) == 2 and len(world.mailer.to(OPS1)) == 2
    assert _link_of(world, BACKUP).subject.startswith("Reminder:")


def test_the_policys_timers_drive_the_workflow() -> None:
    policy = PutApproverRequest(approvers=[OPS1], remindAfterSeconds=[60, 120], escalateAfterSeconds=120,
                                escalateTo=[BACKUP]).policy()  # fmt: skip
    assert [(t.seconds, t.remind, t.escalate, t.expire) for t in timers(policy, 300)] == [
        (60, True, False, False), (60, True, True, False), (180, False, False, True),
    ]  # fmt: skip


# ---- a policy change ------------------------------------------------------------------------------


def test_a_policy_change_retires_every_link_and_starts_a_new_round(quorum: World) -> None:
    created, _ = quorum.waiting()
    old_ops1, old_ops2 = _link_of(quorum, OPS1), _link_of(quorum, OPS2)
    _decide(quorum, old_ops1.token)
    # When an operator changes the policy (ops2 and ops3, quorum 2)
    put_approver(quorum.registry, quorum.subscriptions, quorum.connections, quorum.mailer, OSCAR, ACCOUNT,
                 PutApproverRequest(approvers=[OPS2, OPS3], quorum=2))  # fmt: skip
    # Then the old links die, the new approvers get links, and earlier approvals no longer count
    for old in (old_ops2,):
        with pytest.raises(VerificationTokenGone):
            view_page(quorum.connections, quorum.tokens, old.token)
    stored = quorum.connections.get(created.connectionId)
    assert (stored.approvals, stored.quorum) == ([], 2)
    assert _decide(quorum, _link_of(quorum, OPS2).token).status == S.PENDING_APPROVAL
    assert _decide(quorum, _link_of(quorum, OPS3).token).status == S.APPROVED
    assert len(quorum.mailer.to(OPS1)) == 1  # ops1 is no approver now: no new link


def test_unregistering_the_policy_withdraws_the_undecided_approvers_links(quorum: World) -> None:
    # Given ops1 approved (their link spent) and ops2 has not decided
    created, _ = quorum.waiting()
    _decide(quorum, _link_of(quorum, OPS1).token)
    ops2 = _link_of(quorum, OPS2)
    # When the account's policy is unregistered
    delete_approver(quorum.registry, quorum.subscriptions, quorum.connections, OSCAR, ACCOUNT)
    # Then ops2's link is withdrawn (the spent one left as it is), recorded as oscar's
    with pytest.raises(VerificationTokenGone) as gone:
        view_page(quorum.connections, quorum.tokens, ops2.token)
    assert gone.value.reason == "revoked"
    assert quorum.connections.secrets(created.connectionId).links == {}
    assert [e.actor for e in quorum.connections.events if e.type == EventType.LINK_REVOKED] == ["oscar"]


# ---- how it ended ---------------------------------------------------------------------------------


def test_every_approver_who_got_a_link_is_told_how_it_ended(quorum: World) -> None:
    _policy(quorum, quorum=2, escalateAfterSeconds=3600, escalateTo=[BACKUP])
    created, _ = quorum.waiting()
    quorum.notify(created.connectionId, "task-2", ESCALATE)
    _decide(quorum, _link_of(quorum, OPS1).token)
    _decide(quorum, _link_of(quorum, BACKUP).token)
    outcome = RecordOutcomeInput(connectionId=created.connectionId, outcome="VERIFIED")
    verified = record_outcome(quorum.connections, quorum.mailer, outcome)
    assert [a.approver for a in verified.approvals] == [OPS1, BACKUP]
    [told] = [e for e in quorum.mailer.emails if "verified" in e.subject]
    assert set(told.recipients) == {OPS1, OPS2, BACKUP}
    assert f"Decided by:    {BACKUP}" in told.body and OPS1 in told.body


def test_a_cancel_is_told_to_the_approvers_too(quorum: World) -> None:
    created, _ = quorum.waiting()
    cancel_connection(quorum.connections, quorum.workflow, ALICE, SPACE, created.connectionId)
    record_outcome(
        quorum.connections,
        quorum.mailer,
        RecordOutcomeInput(connectionId=created.connectionId, outcome="ENDED"),
    )
    [told] = [e for e in quorum.mailer.emails if "cancelled" in e.subject]
    assert set(told.recipients) == {OPS1, OPS2} and "cancelled by the requester" in told.body


def _chain_moved(world: World) -> Email:
    """A plain request stored before the approvals-needed count existed, whose chain moved after
    its link was written (a replayed create replaced the connection token): its link's email."""
    created, email = world.waiting()
    record = world.connections.records[created.connectionId]
    record.secrets = replace(record.secrets, approvals_needed=None)
    connection, secrets = world.connections.read(created.connectionId)
    held = world.tokens.get(secrets.connection_token_hash or "")
    assert held is not None
    fresh = held.model_copy(update={"tokenHash": "f" * 64})
    world.connections.rotate_connection_token(connection, fresh, secrets=secrets, actor="alice")
    return email


def test_a_quorum_1_approval_that_must_read_again_is_still_the_last(world: World) -> None:
    # Given a plain request whose chain moved after its link was written
    email = _chain_moved(world)
    # When the administrator approves (the link's chain copy is stale: the decision reads again)
    decided = _decide(world, email.token)
    # Then the one approval of a quorum of one approves the request
    assert decided.status == S.APPROVED


def test_a_rejection_whose_chain_moved_pauses_then_reads_again(world: World, pauses: list[float]) -> None:
    # Given a plain request whose chain moved after its link was written
    email = _chain_moved(world)
    # When the administrator rejects (the link's chain copy is stale: the write loses once)
    decided = _decide(world, email.token, "reject", reason="not this account")
    # Then the request is rejected, after one pause within the first lost race's bound
    assert decided.status == S.REJECTED and world.connections.transitions == [S.REJECTED]
    assert len(pauses) == 1 and 0 <= pauses[0] <= backoff.bound(1)
