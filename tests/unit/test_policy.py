"""Approval policies (domain/policy.py): the body of ``PUT /approvers/{accountId}`` in its two
forms, the rules across its fields (each problem naming its field, as the 400 answer does), its
one-line description, and the approval workflow's timers."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from account_connections.domain.policy import ApprovalPolicy, PutApproverRequest, Timer, timers

WINDOW = 604800  # the template's ApprovalTimeoutSeconds: 7 days
A, B, C = "a@example.com", "b@example.com", "c@example.com"


def problems(window: int = WINDOW, **body: Any) -> dict[str, str]:
    """field -> message of what ``body`` breaks across its fields."""
    found = PutApproverRequest.model_validate(body).problems(window)
    return {problem["field"]: problem["message"] for problem in found}


def refused(**body: Any) -> set[str]:
    """The fields the model itself refuses (types, bounds, unknown fields)."""
    with pytest.raises(ValidationError) as caught:
        PutApproverRequest.model_validate(body)
    return {".".join(str(part) for part in error["loc"]) for error in caught.value.errors()}


# ---- the two forms -----------------------------------------------------------------------------


def test_the_email_form_is_the_plain_policy_of_one_administrator() -> None:
    request = PutApproverRequest.model_validate({"email": A})
    assert request.problems(WINDOW) == []
    assert request.policy() == ApprovalPolicy(approvers=[A])
    principals = ["arn:aws:iam::111122223333:role/Admin"]
    with_principals = PutApproverRequest.model_validate({"email": A, "approverPrincipals": principals})
    assert with_principals.problems(WINDOW) == []
    assert with_principals.policy().approverPrincipals == principals


def test_a_whole_policy_is_accepted_as_given() -> None:
    body = {"approvers": [A, B], "quorum": 2, "remindAfterSeconds": [3600, 7200],
            "escalateAfterSeconds": 86400, "escalateTo": [C],
            "approverPrincipals": ["arn:aws:iam::111122223333:role/Admin"]}  # fmt: skip
    request = PutApproverRequest.model_validate(body)
    assert request.problems(WINDOW) == []
    assert request.policy().model_dump() == body
    assert request.policy().addresses() == [A, B, C]


def test_the_quorum_defaults_to_one() -> None:
    assert PutApproverRequest.model_validate({"approvers": [A, B]}).policy().quorum == 1


@pytest.mark.parametrize("body", [{}, {"email": A, "approvers": [B]}, {"approverPrincipals": []}])
def test_exactly_one_of_email_and_approvers(body: dict[str, Any]) -> None:
    assert set(problems(**body)) == {"approvers"}
    assert "either email" in problems(**body)["approvers"]


@pytest.mark.parametrize(
    ("field", "value"),
    [("quorum", 1), ("remindAfterSeconds", [3600]), ("escalateAfterSeconds", 3600), ("escalateTo", [B])],
)
def test_policy_fields_need_the_approvers_form(field: str, value: Any) -> None:
    needs = "needs approvers: a policy lists its approvers, not email"
    assert problems(email=A, **{field: value}) == {field: needs}


def test_every_policy_field_given_with_email_is_named() -> None:
    found = problems(email=A, quorum=1, remindAfterSeconds=[3600], escalateAfterSeconds=7200, escalateTo=[B])
    assert set(found) == {"quorum", "remindAfterSeconds", "escalateAfterSeconds", "escalateTo"}


# ---- duplicates, quorum ------------------------------------------------------------------------


def test_a_duplicate_approver_is_named_by_index_whatever_its_case() -> None:
    assert problems(approvers=[A, B, "A@Example.COM"]) == {
        "approvers[2]": "A@Example.COM is listed twice (first in approvers[0])"
    }


def test_an_escalation_address_that_is_already_an_approver_is_a_duplicate() -> None:
    found = problems(approvers=[A, B], escalateAfterSeconds=3600, escalateTo=[C, "b@EXAMPLE.com"])
    assert found == {"escalateTo[1]": "b@EXAMPLE.com is listed twice (first in approvers[1])"}
    again = problems(approvers=[A], escalateAfterSeconds=3600, escalateTo=[C, C])
    assert again == {"escalateTo[1]": f"{C} is listed twice (first in escalateTo[0])"}


def test_the_quorum_is_at_most_the_number_of_approvers() -> None:
    assert problems(approvers=[A, B], quorum=2) == {}
    assert problems(approvers=[A, B], quorum=3) == {"quorum": "must be at most the number of approvers (2)"}
    # Escalation addresses are not counted: they decide only once the request escalates.
    assert "quorum" in problems(approvers=[A], quorum=2, escalateAfterSeconds=3600, escalateTo=[B])


@pytest.mark.parametrize("quorum", [0, -1, 11, "2", 1.5, True])
def test_the_quorum_is_a_whole_number_from_1_to_10(quorum: Any) -> None:
    assert refused(approvers=[A], quorum=quorum) == {"quorum"}


def test_one_to_ten_approvers() -> None:
    assert refused(approvers=[]) == {"approvers"}
    assert refused(approvers=[f"a{n}@example.com" for n in range(11)]) == {"approvers"}
    assert problems(approvers=[f"a{n}@example.com" for n in range(10)], quorum=10) == {}
    assert refused(approvers=["not an address"]) == {"approvers.0"}


# ---- reminders ---------------------------------------------------------------------------------


def test_reminders_ascend_at_least_a_minute_apart() -> None:
    assert problems(approvers=[A], remindAfterSeconds=[60, 120, 3600]) == {}
    assert set(problems(approvers=[A], remindAfterSeconds=[7200, 3600])) == {"remindAfterSeconds[1]"}
    assert set(problems(approvers=[A], remindAfterSeconds=[3600, 3600])) == {"remindAfterSeconds[1]"}
    closer = problems(approvers=[A], remindAfterSeconds=[3600, 3659])
    assert set(closer) == {"remindAfterSeconds[1]"} and "at least 60 after" in closer["remindAfterSeconds[1]"]


@pytest.mark.parametrize("delay", [59, 0, -60])
def test_a_reminder_under_a_minute_is_refused(delay: int) -> None:
    assert refused(approvers=[A], remindAfterSeconds=[3600, delay]) == {"remindAfterSeconds.1"}


def test_a_reminder_at_or_past_the_window_would_never_fire() -> None:
    found = problems(3600, approvers=[A], remindAfterSeconds=[1800, 3600, 5400])
    assert found == {
        "remindAfterSeconds[1]": "must be less than the approval window (3600 s)",
        "remindAfterSeconds[2]": "must be less than the approval window (3600 s)",
    }


def test_at_most_nine_reminders() -> None:
    nine = [3600 * (n + 1) for n in range(9)]
    assert problems(approvers=[A], remindAfterSeconds=nine) == {}
    assert refused(approvers=[A], remindAfterSeconds=[*nine, 3600 * 10]) == {"remindAfterSeconds"}


# ---- escalation --------------------------------------------------------------------------------


def test_escalation_needs_both_its_time_and_its_addresses() -> None:
    # Each names the field that is missing.
    assert problems(approvers=[A], escalateAfterSeconds=3600) == {
        "escalateTo": "escalateAfterSeconds and escalateTo go together"
    }
    assert problems(approvers=[A], escalateTo=[B]) == {
        "escalateAfterSeconds": "escalateAfterSeconds and escalateTo go together"
    }


def test_escalation_falls_inside_the_window_and_after_a_minute() -> None:
    assert problems(3600, approvers=[A], escalateAfterSeconds=3600, escalateTo=[B]) == {
        "escalateAfterSeconds": "must be less than the approval window (3600 s)"
    }
    assert refused(approvers=[A], escalateAfterSeconds=59, escalateTo=[B]) == {"escalateAfterSeconds"}


# ---- what the model refuses outright ------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"email": A, "administrator": B},
        {"approvers": [A], "quorom": 1},
        {"approvers": [A], "escalate": {"after": 60}},
    ],
)
def test_unknown_fields_are_refused(body: dict[str, Any]) -> None:
    unknown = (set(body) - set(PutApproverRequest.model_fields)).pop()
    assert refused(**body) == {unknown}


def test_types_are_not_coerced() -> None:
    assert refused(approvers=A) == {"approvers"}  # a string is not a list
    assert refused(approvers=[A], remindAfterSeconds=["3600"]) == {"remindAfterSeconds.0"}


# ---- the description the audit events carry ----------------------------------------------------


def test_a_policy_describes_itself_in_one_line() -> None:
    assert ApprovalPolicy(approvers=[A]).describe() == f"policy: approvers {A}; quorum 1"
    whole = ApprovalPolicy(approvers=[A, B], quorum=2, remindAfterSeconds=[3600, 7200],
                           escalateAfterSeconds=86400, escalateTo=[C],
                           approverPrincipals=["arn:aws:iam::111122223333:role/Admin"])  # fmt: skip
    assert whole.describe() == (
        f"policy: approvers {A}, {B}; quorum 2; reminders 3600, 7200 s; escalate to {C} after 86400 s; "
        "principals arn:aws:iam::111122223333:role/Admin"
    )


# ---- the workflow's timers ---------------------------------------------------------------------


def test_the_plain_policy_waits_the_window_then_expires() -> None:
    assert timers(ApprovalPolicy(approvers=[A]), WINDOW) == [Timer(number=1, seconds=WINDOW, expire=True)]


def test_reminders_and_escalation_merge_by_offset_each_timer_the_time_since_the_last() -> None:
    policy = ApprovalPolicy(approvers=[A, B], quorum=2, remindAfterSeconds=[3600, 86400],
                            escalateAfterSeconds=86400, escalateTo=[C])  # fmt: skip
    assert timers(policy, WINDOW) == [
        Timer(number=1, seconds=3600, remind=True),
        Timer(number=2, seconds=86400 - 3600, remind=True, escalate=True),
        Timer(number=3, seconds=WINDOW - 86400, expire=True),
    ]
    escalate_first = ApprovalPolicy(approvers=[A], remindAfterSeconds=[7200], escalateAfterSeconds=3600,
                                    escalateTo=[C])  # fmt: skip
    assert timers(escalate_first, WINDOW) == [
        Timer(number=1, seconds=3600, escalate=True),
        Timer(number=2, seconds=3600, remind=True),
        Timer(number=3, seconds=WINDOW - 7200, expire=True),
    ]


def test_offsets_at_or_after_the_window_are_dropped() -> None:
    # A policy registered under a longer window than the deployment has now.
    policy = ApprovalPolicy(approvers=[A], remindAfterSeconds=[1800, 3600, 7200], escalateAfterSeconds=5400,
                            escalateTo=[C])  # fmt: skip
    assert timers(policy, 3600) == [
        Timer(number=1, seconds=1800, remind=True),
        Timer(number=2, seconds=1800, expire=True),
    ]


def test_an_escalation_with_no_addresses_is_no_timer() -> None:
    policy = ApprovalPolicy(approvers=[A], escalateAfterSeconds=3600)
    assert timers(policy, WINDOW) == [Timer(number=1, seconds=WINDOW, expire=True)]


# ---- the local stack's seed ----------------------------------------------------------------------


def test_the_seeds_policies_are_requests_the_api_takes() -> None:
    from local.seed_data import ADMIN_ACCOUNT, ADMIN_EMAIL, POLICY_ACCOUNT, SEED

    requests = {approver.account_id: approver.request() for approver in SEED.approvers}
    assert requests == {
        ADMIN_ACCOUNT: {"email": ADMIN_EMAIL},  # the plain form, as before policies
        POLICY_ACCOUNT: {"approvers": ["ops1@example.com", "ops2@example.com"], "quorum": 2},
    }
    for approver in SEED.approvers:
        request = PutApproverRequest.model_validate(approver.request())
        assert request.problems(60) == []  # even under the shortest window the tests run with
        assert request.policy() == ApprovalPolicy.model_validate(approver.policy())
    # Both approved accounts have the service's roles, and every seeded account its Admin role
    assert SEED.role_accounts == (ADMIN_ACCOUNT, POLICY_ACCOUNT)
    assert set(SEED.accounts) == {ADMIN_ACCOUNT, POLICY_ACCOUNT, "444455556666"}
