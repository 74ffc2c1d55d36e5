"""The composition root: the only module that builds adapters, each once per process, on first
use. Routers and steps ask it; the use cases in ``logic/`` receive what it builds as ports.
``reset()`` forgets them all (tests, after changing the environment).

Each adapter's module is imported by its factory, on first use: a function imports only the
adapters it builds (the docs function none, the requesters' no KMS signer or digest store), and
each adapter's client is made on its first call (``LazyClient``)."""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

from account_connections.adapters.clients import LazyClient, client
from account_connections.settings import (
    ApprovalTopicSettings,
    BaseSettings,
    DigestKeySettings,
    ProofSettings,
    VerifierSettings,
    WorkflowSettings,
    load_settings,
)

if TYPE_CHECKING:
    from account_connections.adapters.dynamodb.audit import DynamoAuditLog
    from account_connections.adapters.dynamodb.connections import DynamoConnections
    from account_connections.adapters.dynamodb.digests import DynamoDigests
    from account_connections.adapters.dynamodb.idempotency import TransactionalIdempotency
    from account_connections.adapters.dynamodb.registry import DynamoRegistry
    from account_connections.adapters.dynamodb.table import Table
    from account_connections.adapters.dynamodb.tokens import DynamoTokens
    from account_connections.adapters.iam import IamVerifier
    from account_connections.adapters.kms import KmsSigner
    from account_connections.adapters.sns import SnsMailer, SnsSubscriptions
    from account_connections.adapters.stepfunctions import StepFunctionsWorkflow
    from account_connections.adapters.sts import StsProofVerifier


@cache
def table() -> Table:
    from account_connections.adapters.dynamodb.table import Table

    return Table(load_settings(BaseSettings).table_name, LazyClient("dynamodb"))


@cache
def connections() -> DynamoConnections:
    from account_connections.adapters.dynamodb.connections import DynamoConnections

    return DynamoConnections(table())


@cache
def tokens() -> DynamoTokens:
    from account_connections.adapters.dynamodb.tokens import DynamoTokens

    return DynamoTokens(table())


@cache
def registry() -> DynamoRegistry:
    from account_connections.adapters.dynamodb.registry import DynamoRegistry

    return DynamoRegistry(table())


@cache
def audit_log() -> DynamoAuditLog:
    from account_connections.adapters.dynamodb.audit import DynamoAuditLog

    return DynamoAuditLog(table())


@cache
def digests() -> DynamoDigests:
    from account_connections.adapters.dynamodb.digests import DynamoDigests

    return DynamoDigests(table())


@cache
def signer() -> KmsSigner:
    from account_connections.adapters.kms import KmsSigner

    key_id = load_settings(DigestKeySettings).digest_key_id
    if not key_id:
        raise RuntimeError("DIGEST_KEY_ID is not set: the function has no digest signing key (template.yaml)")
    return KmsSigner(LazyClient("kms"), key_id)


@cache
def workflow() -> StepFunctionsWorkflow:
    from account_connections.adapters.stepfunctions import StepFunctionsWorkflow

    return StepFunctionsWorkflow(
        LazyClient("stepfunctions"), load_settings(WorkflowSettings).state_machine_arn
    )


@cache
def mailer() -> SnsMailer:
    from account_connections.adapters.sns import SnsMailer

    return SnsMailer(LazyClient("sns"), load_settings(ApprovalTopicSettings).approval_topic_arn)


@cache
def subscriptions() -> SnsSubscriptions:
    from account_connections.adapters.sns import SnsSubscriptions

    return SnsSubscriptions(LazyClient("sns"), load_settings(ApprovalTopicSettings).approval_topic_arn)


@cache
def proof_verifier() -> StsProofVerifier:
    from account_connections.adapters.sts import StsProofVerifier

    return StsProofVerifier(load_settings(ProofSettings).sts_endpoint())


@cache
def verifier() -> IamVerifier:
    from account_connections.adapters.iam import IamVerifier

    config = load_settings(VerifierSettings)
    return IamVerifier(LazyClient("sts"), config.verifier_role_name, config.verifier_external_id)


@cache
def idempotency_persistence() -> TransactionalIdempotency:
    """powertools' idempotency records in the state table, which a keyed create's transaction
    completes (imported here, on use: only the requesters' function needs it)."""
    from account_connections.adapters.dynamodb.idempotency import TransactionalIdempotency

    return TransactionalIdempotency(
        table_name=load_settings(BaseSettings).table_name,
        key_attr="pk",
        sort_key_attr="sk",
        static_pk_value="IDEMPOTENCY#create_connection",
        expiry_attr="ttl",
        status_attr="idempotencyStatus",
        boto3_client=client("dynamodb"),
    )


_BUILT = (table, connections, tokens, registry, audit_log, digests, signer, workflow, mailer, subscriptions,
          verifier, proof_verifier, idempotency_persistence)  # fmt: skip


def reset() -> None:
    for factory in _BUILT:
        factory.cache_clear()
