"""Trust-policy evaluation, as pure functions: does a role's trust policy let a principal assume it?"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote

ASSUME_ACTIONS = {"sts:assumerole", "sts:*", "*"}


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


def trusts(trust_policy: Any, principal_arn: str) -> bool:
    """Whether the policy allows ``sts:AssumeRole`` to ``principal_arn`` (named, or through its
    account's root) and no statement denies it. Conditions are not evaluated."""
    account = principal_arn.split(":")[4] if principal_arn.count(":") >= 5 else ""
    partition = principal_arn.split(":")[1] if principal_arn.count(":") >= 5 else "aws"
    names = {principal_arn, account, f"arn:{partition}:iam::{account}:root"}
    allowed = denied = False
    for statement in _as_list(_policy(trust_policy).get("Statement")):
        if not isinstance(statement, dict):
            continue
        actions = {str(action).lower() for action in _as_list(statement.get("Action"))}
        principal = statement.get("Principal")
        aws = _as_list(principal.get("AWS")) if isinstance(principal, dict) else _as_list(principal)
        if not actions & ASSUME_ACTIONS or not names & {str(name) for name in aws}:
            continue
        if statement.get("Effect") == "Allow":
            allowed = True
        elif statement.get("Effect") == "Deny":
            denied = True
    return allowed and not denied
