"""Trust-policy evaluation, as pure functions: may the runner principal assume a space's role?

When the runner assumes a role for a space, its ``sts:AssumeRole`` call presents the space id
twice: as the external id (``sts:ExternalId``) and as the session tag ``space``
(``aws:RequestTag/space``). Those are the only facts of the request this service can vouch for,
so a statement's ``Condition`` is evaluated only on them:

- ``StringEquals`` / ``StringLike`` (and their ``...IfExists`` forms: both keys are always
  present) on ``sts:ExternalId`` or ``aws:RequestTag/space``, against the space id. A
  ``StringLike`` pattern is matched as IAM matches it (``*`` and ``?``): the value the runner
  presents is known, so a wildcard is as provable as a literal. A pattern that admits every
  space (``*``) is accepted for the same reason an unconditional ``*`` principal is: the runner
  does satisfy it (the role then trusts far more than this space; that is the account's choice).
- Any other key or operator (``aws:SourceIp``, ``aws:PrincipalOrgID``, ``StringNotEquals``,
  ``ForAnyValue:...``, a non-string value, ...) cannot be proven from here: the statement is
  *not provable*.

A statement applies to the runner when its action covers ``sts:AssumeRole`` (``Action`` or
``NotAction``, with IAM's wildcards), its principal names the runner (its ARN, its account id or
the account's ``root``, or ``*``; a ``NotPrincipal`` cannot be proven either way for an assumed
role's session, so it is not provable) and its conditions hold. Then: an applying ``Deny`` wins;
a ``Deny`` that might apply (not provable) leaves the outcome not provable; otherwise an applying
``Allow`` allows; an ``Allow`` that might apply is not provable; nothing applying is not allowed.
"""

from __future__ import annotations

import json
import re
from enum import StrEnum
from typing import Any, NamedTuple
from urllib.parse import unquote

ASSUME_ROLE = "sts:assumerole"
# The request keys the runner presents, equal to the space id (lower case: IAM's keys are not
# case-sensitive).
PRESENTED_KEYS = ("sts:externalid", "aws:requesttag/space")
_OPERATORS = {"stringequals": False, "stringlike": True}  # operator -> matches a pattern


class TrustOutcome(StrEnum):
    ALLOWED = "allowed"
    DENIED = "denied"
    NOT_PROVABLE = "not provable"
    NOT_ALLOWED = "not allowed"


class TrustVerdict(NamedTuple):
    """What the trust policy says of the runner assuming the role for a space; ``condition``
    names, for a verdict that is not provable, the operator and key that could not be proven
    (``"StringEquals aws:SourceIp"``, or ``"NotPrincipal"``), never a value of the policy, and
    whether it was a ``Deny`` that could not be ruled out (else an ``Allow`` that could not be
    relied on)."""

    outcome: TrustOutcome
    condition: str | None = None
    by_deny: bool = False

    @property
    def allowed(self) -> bool:
        return self.outcome == TrustOutcome.ALLOWED


class _Applies(StrEnum):
    YES = "yes"
    NO = "no"
    UNKNOWN = "unknown"


def _policy(document: Any) -> dict[str, Any]:
    """The trust policy as a dict: AWS returns it URL-encoded JSON (botocore may decode it already)."""
    if isinstance(document, dict):
        return document
    text = str(document or "")
    for candidate in (text, unquote(text)):
        try:
            parsed = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(parsed, dict):
            return parsed
    return {}


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value] if value is not None else []


def _glob(pattern: str, value: str, *, case_sensitive: bool = True) -> bool:
    """IAM's wildcard match: ``*`` any run of characters, ``?`` any one; nothing else is special."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, 0 if case_sensitive else re.IGNORECASE) is not None


def _covers_assume_role(statement: dict[str, Any]) -> bool:
    if "Action" in statement:
        return any(_glob(str(a), ASSUME_ROLE, case_sensitive=False) for a in _as_list(statement["Action"]))
    if "NotAction" in statement:
        return not any(
            _glob(str(a), ASSUME_ROLE, case_sensitive=False) for a in _as_list(statement["NotAction"])
        )
    return False


def _names(principal: Any, runner: set[str]) -> bool:
    """Whether a ``Principal`` element names the runner. ``*`` (or ``{"AWS": "*"}``) names
    everyone, the runner too; other keys (``Service``, ``Federated``) name no IAM role."""
    if principal == "*":
        return True
    if not isinstance(principal, dict):
        return False
    return any(str(name) == "*" or str(name) in runner for name in _as_list(principal.get("AWS")))


def _condition(condition: Any, space_id: str) -> tuple[_Applies, str | None]:
    """Whether the runner's request satisfies ``condition``: every operator, every key, any of a
    key's values. A key that does not hold decides (the statement does not apply); else the
    first operator and key that cannot be proven make it unknown."""
    if condition is None:
        return _Applies.YES, None
    if not isinstance(condition, dict):
        return _Applies.UNKNOWN, "Condition"
    unknown: str | None = None
    for operator, keys in condition.items():
        base = str(operator).lower().removesuffix("ifexists")
        if base not in _OPERATORS or not isinstance(keys, dict) or not keys:
            named = next(iter(keys), None) if isinstance(keys, dict) else None
            unknown = unknown or (f"{operator} {named}" if named else str(operator))
            continue
        for key, values in keys.items():
            listed = _as_list(values)
            if (
                str(key).lower() not in PRESENTED_KEYS
                or not listed
                or not all(isinstance(v, str) for v in listed)
            ):
                unknown = unknown or f"{operator} {key}"
            elif not any(_glob(v, space_id) if _OPERATORS[base] else v == space_id for v in listed):
                return _Applies.NO, None
    return (_Applies.UNKNOWN, unknown) if unknown else (_Applies.YES, None)


def _applies(statement: dict[str, Any], runner: set[str], space_id: str) -> tuple[_Applies, str | None]:
    if not _covers_assume_role(statement):
        return _Applies.NO, None
    holds, unproven = _condition(statement.get("Condition"), space_id)
    if holds == _Applies.NO:
        return holds, None
    if "NotPrincipal" in statement:
        # Whether an assumed role's session is excluded depends on its session ARN and IAM's
        # rules for NotPrincipal: not something to prove from the role ARN alone.
        return _Applies.UNKNOWN, "NotPrincipal"
    if not _names(statement.get("Principal"), runner):
        return _Applies.NO, None
    return holds, unproven


def evaluate_trust(trust_policy: Any, principal_arn: str, space_id: str) -> TrustVerdict:
    """What ``trust_policy`` says of ``principal_arn`` calling ``sts:AssumeRole`` for the space
    ``space_id`` (see the module's docstring for the rules)."""
    parts = principal_arn.split(":")
    account = parts[4] if len(parts) >= 6 else ""
    partition = parts[1] if len(parts) >= 6 else "aws"
    runner = {principal_arn, account, f"arn:{partition}:iam::{account}:root"} - {""}
    allow: list[tuple[_Applies, str | None]] = []
    deny: list[tuple[_Applies, str | None]] = []
    for statement in _as_list(_policy(trust_policy).get("Statement")):
        if not isinstance(statement, dict) or statement.get("Effect") not in ("Allow", "Deny"):
            continue
        (allow if statement["Effect"] == "Allow" else deny).append(_applies(statement, runner, space_id))
    if any(applies == _Applies.YES for applies, _ in deny):
        return TrustVerdict(TrustOutcome.DENIED)
    for applies, condition in deny:
        if applies == _Applies.UNKNOWN:
            return TrustVerdict(TrustOutcome.NOT_PROVABLE, condition, by_deny=True)
    if any(applies == _Applies.YES for applies, _ in allow):
        # An unconditional "*" principal lands here too: it trusts everyone, the runner included.
        return TrustVerdict(TrustOutcome.ALLOWED)
    for applies, condition in allow:
        if applies == _Applies.UNKNOWN:
            return TrustVerdict(TrustOutcome.NOT_PROVABLE, condition)
    return TrustVerdict(TrustOutcome.NOT_ALLOWED)
