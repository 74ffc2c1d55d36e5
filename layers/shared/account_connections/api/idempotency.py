"""Idempotent creates: the ``Idempotency-Key`` header through powertools' idempotency utility,
its records kept in the state table (``IDEMPOTENCY#create_connection``).

A record keeps the create's response without its connection token (SPEC.md: the token never
leaves the server after the create response, not even into an idempotency record), so a replay
cannot answer the first token: it answers the same connection with a new connection token that
replaces the first (``logic.connections.replay_create``).

The create's own transaction completes the record (``adapters.dynamodb.idempotency``): ``run`` is
given the write that does it, for the store to add to its transaction."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyValidationError,
)
from aws_lambda_powertools.utilities.idempotency.serialization.base import BaseIdempotencySerializer
from aws_lambda_powertools.utilities.typing import LambdaContext

from account_connections import wiring
from account_connections.domain.connection import (
    Connection,
    CreateConnectionRequest,
    CreateConnectionResponse,
)
from account_connections.domain.errors import IdempotencyInProgress, IdempotencyKeyReused
from account_connections.domain.fields import Model

if TYPE_CHECKING:
    from account_connections.adapters.dynamodb.idempotency import TransactionalIdempotency


class IdempotentCreate(Model):
    """What an Idempotency-Key is scoped to: the caller and the space; ``body`` must match."""

    key: str
    principal: str
    spaceId: str
    body: CreateConnectionRequest


@cache
def _config(ttl_seconds: int) -> IdempotencyConfig:
    return IdempotencyConfig(
        event_key_jmespath="[key, principal, spaceId]",
        payload_validation_jmespath="body",
        expires_after_seconds=ttl_seconds,
        raise_on_no_idempotency_key=True,
    )


class WithoutConnectionToken(BaseIdempotencySerializer):
    """A create's response as its idempotency record keeps it: everything but ``connectionToken``,
    which reads back empty."""

    def to_dict(self, data: CreateConnectionResponse) -> dict[str, Any]:
        return data.model_dump(mode="json", exclude={"connectionToken"})

    def from_dict(self, data: dict[str, Any]) -> CreateConnectionResponse:
        return CreateConnectionResponse.model_validate({**data, "connectionToken": ""})


# The transaction item that completes the key's record with the create's response, given the
# connection as the create's transaction stores it.
Completion = Callable[[Connection], dict[str, Any]]


@cache
def _idempotent_create(ttl_seconds: int, records: TransactionalIdempotency) -> Any:
    """The guarded create, once per TTL and records (those the composition root builds now: the
    ones its completion writes to)."""
    serializer = WithoutConnectionToken()

    def completion(created: Connection) -> dict[str, Any]:
        # The response the create will answer, as the record keeps it (without its token: any will do).
        answer = CreateConnectionResponse(**created.model_dump(), connectionToken="")
        return records.completion(serializer.to_dict(answer))

    @idempotent_function(
        data_keyword_argument="request",
        persistence_store=records,
        config=_config(ttl_seconds),
        output_serializer=serializer,
    )
    def create(
        request: IdempotentCreate, run: Callable[[Completion], CreateConnectionResponse]
    ) -> CreateConnectionResponse:
        return run(completion)

    return create


def create_once(
    request: IdempotentCreate,
    context: LambdaContext,
    run: Callable[[Completion], CreateConnectionResponse],
    replay: Callable[[CreateConnectionResponse], CreateConnectionResponse],
    ttl_seconds: int,
) -> CreateConnectionResponse:
    """``run(completion)`` once per key, caller and space, its transaction completing the key's
    record with ``completion`` (powertools then writes nothing more: the key costs one call, the
    in-progress put); a retry with the same body gets ``replay(stored)``: the stored response
    (without its connection token) as ``replay`` completes it. When ``run`` raises, powertools
    deletes the record, completed or not, and the key is free again.

    Raises ``IdempotencyKeyReused`` (same key, another body), ``IdempotencyInProgress`` and what
    ``run`` and ``replay`` raise.
    """
    ran = False

    def first(completion: Completion) -> CreateConnectionResponse:
        nonlocal ran
        ran = True
        return run(completion)

    # The in-progress record expires with this invocation, so that a crash frees the key.
    _config(ttl_seconds).register_lambda_context(context)
    try:
        response: CreateConnectionResponse = _idempotent_create(
            ttl_seconds, wiring.idempotency_persistence()
        )(request=request, run=first)
    except IdempotencyValidationError as exc:
        raise IdempotencyKeyReused("this Idempotency-Key was used with a different body") from exc
    except IdempotencyAlreadyInProgressError as exc:
        raise IdempotencyInProgress("a request with this Idempotency-Key is still in progress") from exc
    return response if ran else replay(response)
