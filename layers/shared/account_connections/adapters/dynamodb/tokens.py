"""Link and connection tokens in the state table (``TOKEN#<sha256>``): the reader, and the
operations the connection store puts into its transactions (store, retire, refresh copies)."""

from __future__ import annotations

from typing import Any

from account_connections.adapters.dynamodb.keys import token_key
from account_connections.adapters.dynamodb.table import Item, Op, Table
from account_connections.domain.tokens import LinkToken, TokenState

# What a token item keeps that only the server may see: the workflow's task token and the CSRF
# secret, copied there so that a decision needs no read of the connection item.
SECRETS = ("taskToken", "csrfSecret")


def token_item(token: LinkToken) -> Item:
    item: dict[str, Any] = {
        **token_key(token.tokenHash),
        **token.model_dump(mode="json", exclude={"tokenHash"}, exclude_none=True),
    }
    return item


def put_token(table: Table, token: LinkToken) -> Op:
    return table.put(token_item(token), new=True)


def retire_token(table: Table, token_hash: str, state: TokenState, *, require_active: bool) -> Op:
    """Mark a token used or replaced, dropping its copies of the task token and CSRF secret;
    ``require_active`` makes it the one-time consume."""
    if require_active:
        return table.update(token_key(token_hash), set_fields={"state": str(state)}, remove=SECRETS,
                            condition="#state = :active", names={"#state": "state"},
                            values={":active": str(TokenState.ACTIVE)})  # fmt: skip
    return table.update(token_key(token_hash), set_fields={"state": str(state)}, remove=SECRETS)


def refresh_token(table: Table, token_hash: str, fields: dict[str, Any], *, active: bool = False) -> Op:
    """Set attributes of an existing token item (the connection token gets each new link's task
    token, CSRF secret and approvers' addresses; a live link the workflow's new task token);
    ``active``: only while the token still works. A ``None`` value removes the attribute."""
    removed = [name for name, value in fields.items() if value is None]
    kept = {name: value for name, value in fields.items() if value is not None}
    if active:
        return table.update(
            token_key(token_hash), set_fields=kept, remove=removed, condition="#state = :active",
            names={"#state": "state"}, values={":active": str(TokenState.ACTIVE)},
        )  # fmt: skip
    return table.update(token_key(token_hash), set_fields=kept, remove=removed)


class DynamoTokens:
    def __init__(self, table: Table) -> None:
        self.table = table

    def get(self, token_hash: str) -> LinkToken | None:
        item = self.table.get(token_key(token_hash))
        if item is None:
            return None
        fields = {key: value for key, value in item.items() if key not in ("pk", "sk")}
        if "ttl" in fields:
            fields["ttl"] = int(fields["ttl"])
        return LinkToken.model_validate({**fields, "tokenHash": token_hash})
