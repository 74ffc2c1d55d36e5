"""The role check and the requester's attach and detach, over the fakes."""

from __future__ import annotations

import json
from typing import TypeAlias

import pytest

from account_connections.api.problems import status_of
from account_connections.domain.access import Principal
from account_connections.domain.audit import EventType
from account_connections.domain.connection import RoleAttachment
from account_connections.domain.errors import (
    ConnectionAlreadyDecided,
    ConnectionNotFound,
    DependencyUnavailable,
    InvalidRequest,
    RoleCheckFailed,
    RoleNotFound,
    TooManyRoles,
)
from account_connections.domain.statuses import ConnectionStatus
from account_connections.logic.roles import attach_role, check_roles, detach_role
from tests.builders import ACCOUNT, OTHER_SPACE, RUNNER, SPACE, connection, recorded_role, role_arn
from tests.fakes import FakeVerifier, InMemoryConnections, trust_policy
from tests.unit.world import ALICE, BUILD_ROLE, UNTRUSTED_ROLE, World

DAVE = Principal(sub="dave", groups=frozenset())

S: TypeAlias = ConnectionStatus


def _check(verifier: FakeVerifier, *arns: str) -> dict[str, str | None]:
    """Each role's reason for not being attached (None: attached)."""
    results = check_roles(verifier, ACCOUNT, list(arns), RUNNER, space_id=SPACE)
    assert [r.roleArn for r in results] == list(arns)
    return {r.roleArn: (None if r.attached else r.reason) for r in results}


def test_each_role_is_checked_and_a_failure_recorded_with_why(world: World) -> None:
    world.verifier.add_role(ACCOUNT, "Denied", trust_policy(RUNNER, effect="Deny"))
    world.verifier.add_role(ACCOUNT, "Pathed", trust_policy(RUNNER), path="/ci/")
    others = [role_arn("Missing"), role_arn("Denied"), role_arn("Pathed"), role_arn("Build", "210987654321")]
    reasons = _check(world.verifier, BUILD_ROLE, UNTRUSTED_ROLE, *others, "not-an-arn")
    assert reasons[BUILD_ROLE] is None
    assert f"does not allow sts:AssumeRole to {RUNNER}" in str(reasons[UNTRUSTED_ROLE])
    assert reasons[role_arn("Missing")] == f"role Missing does not exist in account {ACCOUNT}"
    assert "trust policy denies sts:AssumeRole" in str(reasons[role_arn("Denied")])  # an explicit Deny wins
    assert "with another path" in str(reasons[role_arn("Pathed")])
    assert "not the connection's account" in str(reasons[role_arn("Build", "210987654321")])
    assert "is not a role ARN" in str(reasons["not-an-arn"])
    # The verifier role is assumed once for all of them
    assert world.verifier.opened == [("aws", ACCOUNT)]


def _trust(statement: dict[str, object]) -> str:
    allowing = {"Effect": "Allow", "Principal": {"AWS": RUNNER}, "Action": "sts:AssumeRole", **statement}
    return json.dumps({"Version": "2012-10-17", "Statement": [allowing]})


def test_a_condition_counts_only_when_the_runner_satisfies_it_and_the_reason_says_which(world: World) -> None:
    # Given roles whose trust is scoped by conditions
    world.verifier.add_role(
        ACCOUNT, "ForDemo", _trust({"Condition": {"StringEquals": {"sts:ExternalId": SPACE}}})
    )
    world.verifier.add_role(ACCOUNT, "TaggedDemo", _trust(
        {"Condition": {"StringLike": {"aws:RequestTag/space": "de*"}}}))  # fmt: skip
    world.verifier.add_role(
        ACCOUNT, "ForProd", _trust({"Condition": {"StringEquals": {"sts:ExternalId": "prod-7"}}})
    )
    world.verifier.add_role(ACCOUNT, "FromOffice", _trust(
        {"Condition": {"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}}}))  # fmt: skip
    world.verifier.add_role(ACCOUNT, "Fenced", json.dumps({"Statement": [
        {"Effect": "Allow", "Principal": {"AWS": RUNNER}, "Action": "sts:AssumeRole"},
        {"Effect": "Deny", "Principal": "*", "Action": "sts:*",
         "Condition": {"StringNotEquals": {"aws:PrincipalOrgID": "o-secret123"}}}]}))  # fmt: skip
    # When they are checked for the space demo
    reasons = _check(world.verifier, *(role_arn(n) for n in ("ForDemo", "TaggedDemo", "ForProd", "FromOffice",
                                                             "Fenced")))  # fmt: skip
    # Then the ones the runner satisfies are attached, the others say why
    assert reasons[role_arn("ForDemo")] is None and reasons[role_arn("TaggedDemo")] is None
    assert f"does not allow sts:AssumeRole to {RUNNER} for space {SPACE}" in str(reasons[role_arn("ForProd")])
    office = str(reasons[role_arn("FromOffice")])
    assert "an Allow" in office and "cannot be proven (IpAddress aws:SourceIp)" in office
    fenced = str(reasons[role_arn("Fenced")])
    assert "a Deny that may apply" in fenced and "(StringNotEquals aws:PrincipalOrgID)" in fenced
    # And no reason repeats a value of the trust policy: only what the requester named
    assert not [r for r in reasons.values() if r and any(v in r for v in ("prod-7", "203.0.113", "o-secret"))]


def test_the_same_role_is_checked_for_the_connections_space(world: World) -> None:
    # Given a role that trusts the runner for the space demo only, and verified connections of two spaces
    world.verifier.add_role(
        ACCOUNT, "ForDemo", _trust({"Condition": {"StringEquals": {"sts:ExternalId": SPACE}}})
    )
    ours = _verified(world)
    theirs = connection(S.VERIFIED, space_id=OTHER_SPACE)
    world.connections.seed(theirs)
    # Then POST .../roles attaches it to demo's connection and refuses it for the other space's
    assert _attach(world, ours, role_arn("ForDemo")).attached
    with pytest.raises(RoleCheckFailed) as refused:
        attach_role(world.connections, world.verifier, RUNNER, DAVE, OTHER_SPACE, theirs.connectionId,
                    role_arn("ForDemo"))  # fmt: skip
    assert f"for space {OTHER_SPACE}" in refused.value.detail


def test_an_account_whose_verifier_role_cannot_be_assumed_refuses_each_role() -> None:
    verifier = FakeVerifier()
    verifier.refused.add(ACCOUNT)
    reasons = _check(verifier, role_arn("A"), role_arn("B"))
    assert all("cannot be assumed" in str(reason) for reason in reasons.values())
    assert verifier.opened == [("aws", ACCOUNT)]


def test_a_role_the_verifier_may_not_read_is_refused_with_why(world: World) -> None:
    world.verifier.unreadable.add("BuildRole")
    assert "may not read role BuildRole" in str(_check(world.verifier, BUILD_ROLE)[BUILD_ROLE])


def test_a_transient_failure_is_raised_for_the_workflow_to_retry(world: World) -> None:
    world.verifier.transient = True
    with pytest.raises(DependencyUnavailable):
        check_roles(world.verifier, ACCOUNT, [BUILD_ROLE], RUNNER, space_id=SPACE)


# ---- attach and detach -------------------------------------------------------------------------


def _verified(world: World, *roles: RoleAttachment) -> str:
    verified = connection(S.VERIFIED, version=3)
    world.connections.seed(verified, roles=list(roles))
    return verified.connectionId


def _attach(world: World, connection_id: str, arn: str, space_id: str = SPACE) -> RoleAttachment:
    return attach_role(world.connections, world.verifier, RUNNER, ALICE, space_id, connection_id, arn)


def test_a_checked_role_is_attached_to_a_verified_connection(world: World) -> None:
    connection_id = _verified(world)
    attached = _attach(world, connection_id, BUILD_ROLE)
    assert (attached.roleName, attached.attached) == ("BuildRole", True)
    assert world.connections.get_role(connection_id, "BuildRole") == attached
    [event] = world.connections.events
    assert (event.type, event.actor, event.detail) == (EventType.ROLE_ATTACHED, "alice", BUILD_ROLE)


def test_a_role_that_fails_its_check_is_refused_with_why_and_not_recorded(world: World) -> None:
    connection_id = _verified(world)
    with pytest.raises(RoleCheckFailed) as refused:
        _attach(world, connection_id, UNTRUSTED_ROLE)
    assert status_of(refused.value) == 422 and "does not allow sts:AssumeRole" in refused.value.detail
    assert world.connections.get_role(connection_id, "UntrustedRole") is None
    assert world.connections.events == []


def test_a_role_of_another_account_is_a_bad_request(world: World) -> None:
    connection_id = _verified(world)
    with pytest.raises(InvalidRequest) as refused:
        _attach(world, connection_id, role_arn("BuildRole", "210987654321"))
    assert [error["field"] for error in refused.value.errors] == ["roleArn"]
    assert world.verifier.opened == []


@pytest.mark.parametrize("status", [S.PENDING_APPROVAL, S.APPROVED, S.DISCONNECTED, S.REJECTED])
def test_roles_are_attached_only_to_verified_connections(world: World, status: S) -> None:
    other = connection(status)
    world.connections.seed(other)
    with pytest.raises(ConnectionAlreadyDecided) as refused:
        _attach(world, other.connectionId, BUILD_ROLE)
    assert "VERIFIED" in refused.value.detail
    assert world.connections.get_role(other.connectionId, "BuildRole") is None


def test_another_spaces_connection_gets_no_role(world: World) -> None:
    connection_id = _verified(world)
    with pytest.raises(ConnectionNotFound):
        _attach(world, connection_id, BUILD_ROLE, space_id=OTHER_SPACE)
    with pytest.raises(ConnectionNotFound):
        detach_role(world.connections, ALICE, OTHER_SPACE, connection_id, "BuildRole")


def test_a_recorded_role_is_detached(world: World) -> None:
    build = RoleAttachment(roleArn=BUILD_ROLE, roleName="BuildRole", attached=True, checkedAt="t")
    refused = RoleAttachment(roleArn=UNTRUSTED_ROLE, roleName="UntrustedRole", attached=False, reason="r",
                             checkedAt="t")  # fmt: skip
    connection_id = _verified(world, build, refused)
    # A role recorded as refused can be removed too
    for name in ("BuildRole", "UntrustedRole"):
        detach_role(world.connections, ALICE, SPACE, connection_id, name)
    assert world.connections.detail(connection_id)[1] == []
    assert [(e.type, e.detail) for e in world.connections.events] == [
        (EventType.ROLE_DETACHED, BUILD_ROLE), (EventType.ROLE_DETACHED, UNTRUSTED_ROLE),
    ]  # fmt: skip


def test_a_connection_records_at_most_ten_roles(world: World) -> None:
    # Given a verified connection with ten roles recorded, attached or refused
    connection_id = _verified(world, *(recorded_role(f"Role{i}", attached=i % 2 == 0) for i in range(10)))
    world.verifier.add_role(ACCOUNT, "Role1", trust_policy(RUNNER))
    # When alice attaches an eleventh Then it is refused (409), and nothing is recorded
    with pytest.raises(TooManyRoles) as refused:
        _attach(world, connection_id, BUILD_ROLE)
    assert status_of(refused.value) == 409
    assert "at most 10 roles" in refused.value.detail and "detach" in refused.value.detail
    assert world.connections.get_role(connection_id, "BuildRole") is None
    assert world.connections.events == []
    # A recorded role checked again replaces its record: it does not count twice
    assert _attach(world, connection_id, role_arn("Role1")).attached is True
    assert len(world.connections.detail(connection_id)[1]) == 10
    # Detaching one makes room for one
    detach_role(world.connections, ALICE, SPACE, connection_id, "Role3")
    _attach(world, connection_id, BUILD_ROLE)
    world.verifier.add_role(ACCOUNT, "Another", trust_policy(RUNNER))
    with pytest.raises(TooManyRoles):
        _attach(world, connection_id, role_arn("Another"))
    assert len(world.connections.detail(connection_id)[1]) == 10


def test_detaching_a_role_that_is_not_there_is_not_found(world: World) -> None:
    connection_id = _verified(world)
    with pytest.raises(RoleNotFound) as refused:
        detach_role(world.connections, ALICE, SPACE, connection_id, "BuildRole")
    assert status_of(refused.value) == 404 and world.connections.events == []


def test_a_detach_that_loses_a_race_is_a_conflict() -> None:
    # Given the role disappears between the read and the write (another detach)
    build = RoleAttachment(roleArn=BUILD_ROLE, roleName="BuildRole", attached=True, checkedAt="t")
    verified = connection(S.VERIFIED)

    class Racing(InMemoryConnections):
        def get_role(self, connection_id: str, role_name: str) -> RoleAttachment | None:
            found = super().get_role(connection_id, role_name)
            self.records[connection_id].roles.clear()
            return found

    store = Racing()
    store.seed(verified, roles=[build])
    with pytest.raises(ConnectionAlreadyDecided):
        detach_role(store, ALICE, SPACE, verified.connectionId, "BuildRole")
    assert store.events == []
