"""The STS and IAM adapter of the role check: assume the verifier role the account's administrator
created, and read roles through it. The only module that knows STS's and IAM's error codes."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from account_connections.adapters.clients import session_client
from account_connections.adapters.retry import is_transient
from account_connections.domain.errors import DependencyUnavailable, RoleCheckFailed
from account_connections.ports import AccountRoles


class _IamReader:
    def __init__(self, iam: Any, account_id: str) -> None:
        self.iam = iam
        self.account_id = account_id

    def get_role(self, role_name: str) -> dict[str, Any] | None:
        """The role as ``iam:GetRole`` returns it, or None when it does not exist.

        Raises ``DependencyUnavailable`` (transient) and ``RoleCheckFailed`` (access denied).
        """
        try:
            return dict(self.iam.get_role(RoleName=role_name)["Role"])
        except ClientError as exc:
            code = exc.response["Error"]["Code"]
            if code == "NoSuchEntity":
                return None
            if is_transient(exc):
                raise DependencyUnavailable(
                    f"IAM did not answer for account {self.account_id}: {code}"
                ) from exc
            raise RoleCheckFailed(f"the verifier role may not read role {role_name}: {code}") from exc
        except BotoCoreError as exc:
            raise DependencyUnavailable(f"IAM did not answer for account {self.account_id}") from exc


class IamVerifier:
    """The ``RoleVerifier``: assumes ``arn:<partition>:iam::<account>:role/<verifier_role_name>``
    and reads roles with its credentials."""

    def __init__(self, sts: Any, verifier_role_name: str, external_id: str = "") -> None:
        self.sts = sts
        self.role_name = verifier_role_name
        self.external_id = external_id

    def verifier_arn(self, partition: str, account_id: str) -> str:
        return f"arn:{partition}:iam::{account_id}:role/{self.role_name}"

    def open(self, partition: str, account_id: str) -> AccountRoles:
        """Raises ``RoleCheckFailed`` when the verifier role cannot be assumed (it is missing, or
        does not trust this service) and ``DependencyUnavailable`` when STS fails transiently."""
        arn = self.verifier_arn(partition, account_id)
        kwargs: dict[str, Any] = {"RoleArn": arn, "RoleSessionName": "account-connections-verifier"}
        if self.external_id:
            kwargs["ExternalId"] = self.external_id
        try:
            credentials = self.sts.assume_role(**kwargs)["Credentials"]
        except (ClientError, BotoCoreError) as exc:
            if is_transient(exc):
                raise DependencyUnavailable(f"STS did not answer for account {account_id}") from exc
            code = exc.response["Error"]["Code"] if isinstance(exc, ClientError) else type(exc).__name__
            raise RoleCheckFailed(
                f"the verifier role {arn} cannot be assumed ({code}): the account's administrator must "
                "create it and let this service assume it"
            ) from exc
        return _IamReader(session_client("iam", credentials), account_id)
