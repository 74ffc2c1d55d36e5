"""Trust-policy evaluation (SPEC.md, "Roles"), table-driven: which trust policies let the runner
principal assume a space's role, which deny it, and which cannot be proven either way."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import pytest

from account_connections.domain.trust import TrustOutcome, TrustVerdict, evaluate_trust
from tests.builders import RUNNER, SPACE

OTHER_ROOT = "arn:aws:iam::222233334444:root"
ALLOWED, DENIED = TrustVerdict(TrustOutcome.ALLOWED), TrustVerdict(TrustOutcome.DENIED)
NOT_ALLOWED = TrustVerdict(TrustOutcome.NOT_ALLOWED)


def allow(principal: Any = None, *, action: Any = "sts:AssumeRole", condition: Any = None,
          effect: str = "Allow", **extra: Any) -> dict[str, Any]:  # fmt: skip
    """One statement; ``principal`` is the ``AWS`` value unless it is "*" or a full element."""
    statement: dict[str, Any] = {"Effect": effect, **extra}
    if action is not None:
        statement["Action"] = action
    if principal is not None:
        statement["Principal"] = principal if principal == "*" or isinstance(principal, dict) else {
            "AWS": principal}  # fmt: skip
    if condition is not None:
        statement["Condition"] = condition
    return statement


def deny(principal: Any = None, **kwargs: Any) -> dict[str, Any]:
    return allow(principal, effect="Deny", **kwargs)


def policy(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def external_id(value: Any, operator: str = "StringEquals") -> dict[str, Any]:
    return {operator: {"sts:ExternalId": value}}


def unprovable(condition: str, *, by_deny: bool = False) -> TrustVerdict:
    return TrustVerdict(TrustOutcome.NOT_PROVABLE, condition, by_deny=by_deny)


CASES: list[tuple[str, Any, TrustVerdict]] = [
    # ---- principal forms ----
    ("the runner's ARN", policy(allow(RUNNER)), ALLOWED),
    ("a list naming the runner", policy(allow([OTHER_ROOT, RUNNER])), ALLOWED),
    ("the runner's account id", policy(allow("999999999999")), ALLOWED),
    ("the runner's account root", policy(allow("arn:aws:iam::999999999999:root")), ALLOWED),
    # "*" trusts everyone, the runner included: allowed (the account's choice, not this check's).
    ("the string *", policy(allow("*")), ALLOWED),
    ("AWS *", policy(allow({"AWS": "*"})), ALLOWED),
    ("another account", policy(allow(OTHER_ROOT)), NOT_ALLOWED),
    (
        "another role of the runner's account",
        policy(allow("arn:aws:iam::999999999999:role/Other")),
        NOT_ALLOWED,
    ),
    ("a service", policy(allow({"Service": "ec2.amazonaws.com"})), NOT_ALLOWED),
    ("no principal", policy(allow()), NOT_ALLOWED),
    # ---- actions ----
    ("a list of actions", policy(allow(RUNNER, action=["sts:TagSession", "sts:AssumeRole"])), ALLOWED),
    ("sts:*", policy(allow(RUNNER, action="sts:*")), ALLOWED),
    ("sts:Assume*", policy(allow(RUNNER, action="sts:Assume*")), ALLOWED),
    ("*", policy(allow(RUNNER, action="*")), ALLOWED),
    ("actions are not case-sensitive", policy(allow(RUNNER, action="STS:ASSUMEROLE")), ALLOWED),
    ("another action", policy(allow(RUNNER, action="sts:AssumeRoleWithWebIdentity")), NOT_ALLOWED),
    ("sts:AssumeRole? is longer", policy(allow(RUNNER, action="sts:AssumeRole?")), NOT_ALLOWED),
    (
        "NotAction that spares AssumeRole",
        policy(allow(RUNNER, action=None, NotAction="sts:TagSession")),
        ALLOWED,
    ),
    (
        "NotAction that excludes it",
        policy(allow(RUNNER, action=None, NotAction=["sts:Assume*"])),
        NOT_ALLOWED,
    ),
    # ---- conditions the runner satisfies: the space id as external id and session tag ----
    ("ExternalId equal to the space", policy(allow(RUNNER, condition=external_id(SPACE))), ALLOWED),
    ("ExternalId among several", policy(allow(RUNNER, condition=external_id(["prod", SPACE]))), ALLOWED),
    (
        "the space tag",
        policy(allow(RUNNER, condition={"StringEquals": {"aws:RequestTag/space": SPACE}})),
        ALLOWED,
    ),
    (
        "both keys",
        policy(
            allow(
                RUNNER, condition={"StringEquals": {"sts:ExternalId": SPACE, "aws:RequestTag/space": SPACE}}
            )
        ),
        ALLOWED,
    ),
    (
        "keys are not case-sensitive",
        policy(allow(RUNNER, condition={"StringEquals": {"STS:EXTERNALID": SPACE}})),
        ALLOWED,
    ),
    (
        "...IfExists: the runner always presents it",
        policy(allow(RUNNER, condition=external_id(SPACE, "StringEqualsIfExists"))),
        ALLOWED,
    ),
    ("StringLike with *", policy(allow(RUNNER, condition=external_id("de*", "StringLike"))), ALLOWED),
    ("StringLike with ?", policy(allow(RUNNER, condition=external_id("d?mo", "StringLike"))), ALLOWED),
    ("StringLike literal", policy(allow(RUNNER, condition=external_id(SPACE, "StringLike"))), ALLOWED),
    (
        "StringLike that matches another space",
        policy(allow(RUNNER, condition=external_id("prod-*", "StringLike"))),
        NOT_ALLOWED,
    ),
    ("StringEquals does not glob", policy(allow(RUNNER, condition=external_id("de*"))), NOT_ALLOWED),
    ("ExternalId of another space", policy(allow(RUNNER, condition=external_id("prod"))), NOT_ALLOWED),
    ("values are case-sensitive", policy(allow(RUNNER, condition=external_id("DEMO"))), NOT_ALLOWED),
    # A key that does not hold decides, whatever else cannot be proven (every key must hold).
    (
        "ExternalId of another space and an unprovable key",
        policy(
            allow(
                RUNNER,
                condition={
                    "StringEquals": {"sts:ExternalId": "prod"},
                    "IpAddress": {"aws:SourceIp": "203.0.113.0/24"},
                },
            )
        ),
        NOT_ALLOWED,
    ),
    # ---- conditions that cannot be proven ----
    (
        "a source IP",
        policy(allow(RUNNER, condition={"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}})),
        unprovable("IpAddress aws:SourceIp"),
    ),
    (
        "an organization",
        policy(allow(RUNNER, condition={"StringEquals": {"aws:PrincipalOrgID": "o-abc"}})),
        unprovable("StringEquals aws:PrincipalOrgID"),
    ),
    (
        "ExternalId and a source IP",
        policy(
            allow(
                RUNNER,
                condition={
                    "StringEquals": {"sts:ExternalId": SPACE},
                    "IpAddress": {"aws:SourceIp": "203.0.113.0/24"},
                },
            )
        ),
        unprovable("IpAddress aws:SourceIp"),
    ),
    (
        "StringNotEquals",
        policy(allow(RUNNER, condition=external_id("prod", "StringNotEquals"))),
        unprovable("StringNotEquals sts:ExternalId"),
    ),
    (
        "ForAnyValue",
        policy(allow(RUNNER, condition=external_id(SPACE, "ForAnyValue:StringEquals"))),
        unprovable("ForAnyValue:StringEquals sts:ExternalId"),
    ),
    (
        "a Bool",
        policy(allow(RUNNER, condition={"Bool": {"aws:MultiFactorAuthPresent": "true"}})),
        unprovable("Bool aws:MultiFactorAuthPresent"),
    ),
    (
        "a number where a string goes",
        policy(allow(RUNNER, condition=external_id(12))),
        unprovable("StringEquals sts:ExternalId"),
    ),
    (
        "another tag",
        policy(allow(RUNNER, condition={"StringEquals": {"aws:RequestTag/team": SPACE}})),
        unprovable("StringEquals aws:RequestTag/team"),
    ),
    ("a condition that is not an object", policy(allow(RUNNER, condition="yes")), unprovable("Condition")),
    (
        "NotPrincipal on an Allow",
        policy(allow(action="sts:AssumeRole", NotPrincipal={"AWS": OTHER_ROOT})),
        unprovable("NotPrincipal"),
    ),
    # ---- an explicit Deny wins ----
    ("a Deny of the runner", policy(allow(RUNNER), deny(RUNNER)), DENIED),
    ("a Deny of everyone", policy(allow(RUNNER), deny("*")), DENIED),
    ("a Deny of the runner's account", policy(allow(RUNNER), deny("999999999999")), DENIED),
    (
        "a Deny by NotAction",
        policy(allow(RUNNER), deny(RUNNER, action=None, NotAction="sts:TagSession")),
        DENIED,
    ),
    (
        "a Deny whose condition holds",
        policy(allow(RUNNER), deny({"AWS": "*"}, condition=external_id(SPACE))),
        DENIED,
    ),
    ("a Deny alone", policy(deny(RUNNER)), DENIED),
    ("a Deny of someone else", policy(allow(RUNNER), deny(OTHER_ROOT)), ALLOWED),
    ("a Deny of another action", policy(allow(RUNNER), deny(RUNNER, action="sts:TagSession")), ALLOWED),
    ("a Deny for another space", policy(allow(RUNNER), deny("*", condition=external_id("prod"))), ALLOWED),
    (
        "a Deny whose condition cannot be proven",
        policy(allow(RUNNER), deny("*", condition={"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}})),
        unprovable("IpAddress aws:SourceIp", by_deny=True),
    ),
    (
        "a Deny by NotPrincipal",
        policy(allow(RUNNER), deny(action="sts:AssumeRole", NotPrincipal={"AWS": RUNNER})),
        unprovable("NotPrincipal", by_deny=True),
    ),
    # ---- shapes ----
    ("one statement, not a list", {"Statement": allow(RUNNER)}, ALLOWED),
    ("an Effect IAM would not take", policy(allow(RUNNER, effect="allow")), NOT_ALLOWED),
    ("no statement", {"Version": "2012-10-17"}, NOT_ALLOWED),
    ("not JSON", "not json at all", NOT_ALLOWED),
    ("nothing", None, NOT_ALLOWED),
]


@pytest.mark.parametrize(("policy_document", "verdict"), [case[1:] for case in CASES],
                         ids=[case[0] for case in CASES])  # fmt: skip
def test_trust_policies(policy_document: Any, verdict: TrustVerdict) -> None:
    assert evaluate_trust(policy_document, RUNNER, SPACE) == verdict


@pytest.mark.parametrize("encode", [lambda d: d, json.dumps, lambda d: quote(json.dumps(d))],
                         ids=["botocore's dict", "moto's JSON", "IAM's URL-encoded JSON"])  # fmt: skip
def test_every_form_iam_returns_is_read(encode: Any) -> None:
    document = policy(allow(RUNNER, condition=external_id(SPACE)))
    assert evaluate_trust(encode(document), RUNNER, SPACE).allowed
    assert not evaluate_trust(encode(document), RUNNER, "prod").allowed


def test_the_same_role_trusts_one_space_and_not_another() -> None:
    # Given a role scoped to the space "demo" by its external id
    document = policy(allow(RUNNER, condition=external_id(SPACE)))
    # Then the runner may assume it for demo, and not for any other space
    assert evaluate_trust(document, RUNNER, SPACE) == ALLOWED
    assert evaluate_trust(document, RUNNER, "other") == NOT_ALLOWED
