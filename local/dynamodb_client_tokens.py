"""``TransactWriteItems`` with a ``ClientRequestToken`` made idempotent in moto, as in DynamoDB.

moto 5.2.5 accepts the token and ignores it: the same transaction sent twice is applied twice.
In DynamoDB a call that repeats a successful one's token within ten minutes, with the same
items, returns success and changes nothing; with other items it is refused with
``IdempotentParameterMismatchException``. That is what makes an SDK retry safe when a committed
transaction's answer was lost (a read timeout, a dropped connection): the retry, the same request
with the same token, must not be taken for a second transaction. botocore gives every
``TransactWriteItems`` a token (the member is an idempotency token in DynamoDB's model: a UUID is
filled in when the caller gives none) and its retries repeat it; with moto ignoring it, a create
whose answer was lost was refused on its retry as a duplicate of itself, after it was written,
and left without its workflow.

Per backend (account and region), under the DynamoDB write lock of
``local.dynamodb_transactions``, so that checking a token and applying its transaction are one
step. Only a transaction that succeeded is remembered: a cancelled one may be sent again with
its token and is evaluated again, as DynamoDB does.
"""

from __future__ import annotations

import json
import time
from typing import Any

from moto.dynamodb.exceptions import ERROR_TYPE_PREFIX, DynamodbException
from moto.dynamodb.responses import DynamoHandler

from local import dynamodb_transactions

WINDOW_SECONDS = 600  # DynamoDB's idempotency window for a client token
_ORIGINAL: dict[str, Any] = {}


class IdempotentParameterMismatch(DynamodbException):
    error_type = ERROR_TYPE_PREFIX + "IdempotentParameterMismatchException"

    def __init__(self) -> None:
        super().__init__(
            IdempotentParameterMismatch.error_type,
            message="Transaction request cannot include the same client token with different parameters",
        )


def _transact_write_items(self: DynamoHandler) -> Any:
    token = self.body.get("ClientRequestToken")
    if not token:
        return _ORIGINAL["transact"](self)
    request = json.dumps(self.body.get("TransactItems"), sort_keys=True)
    with dynamodb_transactions.WRITE_LOCK:
        # token -> (the request, until when it is remembered, what it was answered)
        seen: dict[str, tuple[str, float, Any]] = self.dynamodb_backend.__dict__.setdefault(
            "_client_tokens", {}
        )
        now = time.monotonic()
        for expired in [key for key, (_, until, _) in seen.items() if until <= now]:
            del seen[expired]
        if token in seen:
            first, _, answer = seen[token]
            if first != request:
                raise IdempotentParameterMismatch()
            return answer
        answer = _ORIGINAL["transact"](self)
        seen[token] = (request, now + WINDOW_SECONDS, answer)
        return answer


def install() -> None:
    """Patch moto's DynamoDB responses in this process (idempotent); needs
    ``local.dynamodb_transactions`` (its lock), which it installs."""
    if _ORIGINAL:
        return
    dynamodb_transactions.install()
    _ORIGINAL["transact"] = DynamoHandler.transact_write_items
    DynamoHandler.transact_write_items = _transact_write_items  # type: ignore[method-assign]
