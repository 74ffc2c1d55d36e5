"""Configuration: one model per function, read from the environment once, on first use. The
adapters' own settings (``WorkflowSettings``, ``ApprovalTopicSettings``, ``VerifierSettings``) are
what ``wiring`` reads; each function's model adds what its routes or steps use."""

from __future__ import annotations

import os
from functools import cache
from typing import TypeVar

from pydantic import ConfigDict, Field

from account_connections.domain.fields import Model

T = TypeVar("T", bound="BaseSettings")


class BaseSettings(Model):
    """Every function reads its settings through ``load_settings(Model)``: never ``os.environ``."""

    model_config = ConfigDict(populate_by_name=True, frozen=True, extra="ignore")

    table_name: str = Field(alias="TABLE_NAME")
    groups_claim: str = Field(default="cognito:groups", alias="GROUPS_CLAIM")


class WorkflowSettings(BaseSettings):
    # Empty where the function only answers tasks (the decision) and never starts an execution.
    state_machine_arn: str = Field(default="", alias="STATE_MACHINE_ARN")


class ApprovalTopicSettings(BaseSettings):
    approval_topic_arn: str = Field(alias="APPROVAL_TOPIC_ARN")


class VerifierSettings(BaseSettings):
    verifier_role_name: str = Field(alias="VERIFIER_ROLE_NAME")
    verifier_external_id: str = Field(default="", alias="VERIFIER_EXTERNAL_ID")
    runner_principal_arn: str = Field(alias="RUNNER_PRINCIPAL_ARN")


class RequesterApiSettings(WorkflowSettings, ApprovalTopicSettings, VerifierSettings):
    state_machine_arn: str = Field(alias="STATE_MACHINE_ARN")
    approval_timeout_seconds: int = Field(default=604800, ge=1, alias="APPROVAL_TIMEOUT_SECONDS")
    public_base_url: str = Field(default="", alias="PUBLIC_BASE_URL")
    idempotency_ttl_seconds: int = Field(default=86400, alias="IDEMPOTENCY_TTL_SECONDS")


class OperatorApiSettings(ApprovalTopicSettings):
    # The approval window (the template's ApprovalTimeoutSeconds): a policy's reminders and
    # escalation must fall inside it.
    approval_timeout_seconds: int = Field(default=604800, ge=1, alias="APPROVAL_TIMEOUT_SECONDS")


class DigestKeySettings(BaseSettings):
    # The KMS key that signs the audit digests (template: DigestSigningKey). Only the public-key
    # route and the digest job use it: the auditors' other routes work without it.
    digest_key_id: str = Field(default="", alias="DIGEST_KEY_ID")


class AuditApiSettings(DigestKeySettings):
    pass


class DigestSettings(DigestKeySettings):
    # How long before a run its period ends (template: DigestSettleSeconds).
    digest_settle_seconds: int = Field(default=60, ge=0, alias="DIGEST_SETTLE_SECONDS")


class ProofSettings(BaseSettings):
    # The STS endpoint account proofs are sent to (never the client's URL); empty: the region's.
    sts_endpoint_url: str = Field(default="", alias="STS_ENDPOINT_URL")
    region: str = Field(default="us-east-1", alias="AWS_REGION")

    def sts_endpoint(self) -> str:
        return self.sts_endpoint_url or f"https://sts.{self.region}.amazonaws.com/"


class DecisionSettings(WorkflowSettings, ApprovalTopicSettings, ProofSettings):
    # Every decision needs an account proof, emailed link or not (samconfig prod).
    require_account_proof: bool = Field(default=False, alias="REQUIRE_ACCOUNT_PROOF")


class NotifyApproverSettings(WorkflowSettings, ApprovalTopicSettings):
    pass


class VerifyConnectionSettings(BaseSettings):
    pass


class AttachRolesSettings(VerifierSettings):
    pass


class RecordOutcomeSettings(ApprovalTopicSettings):
    pass


@cache
def load_settings(model: type[T]) -> T:
    """Parse ``model`` from the environment once per process (``load_settings.cache_clear()`` in tests)."""
    return model.model_validate(dict(os.environ))
