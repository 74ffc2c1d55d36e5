"""The signed digests in the state table: partition ``DIGEST``, one item per digest (``DIGEST#<to>``)
and the digests' head (``HEAD``: the newest digest's ``to`` and ``hash``), moved in the same
transaction as the digest it names, on condition that it is still the one read."""

from __future__ import annotations

from typing import Any

from account_connections.adapters.dynamodb.table import Item, Table
from account_connections.domain.digest import Digest
from account_connections.domain.errors import DigestRaced
from account_connections.ports import Page

DIGEST_PK = "DIGEST"
HEAD_KEY = {"pk": DIGEST_PK, "sk": "HEAD"}


def digest_sk(to: str) -> str:
    return f"DIGEST#{to}"


def _digest(item: Item) -> Digest:
    return Digest.model_validate({key: value for key, value in item.items() if key not in ("pk", "sk")})


class DynamoDigests:
    def __init__(self, table: Table) -> None:
        self.table = table

    def latest(self) -> Digest | None:
        head = self.table.get(HEAD_KEY)
        if head is None:
            return None
        item = self.table.get({"pk": DIGEST_PK, "sk": digest_sk(head["to"])})
        return _digest(item) if item else None

    def append(self, digest: Digest) -> None:
        item = {**digest.model_dump(mode="json", by_alias=True), "pk": DIGEST_PK, "sk": digest_sk(digest.to)}
        if digest.previousHash is None:
            head = self.table.put({**HEAD_KEY, "to": digest.to, "hash": digest.hash}, new=True)
        else:
            head = self.table.update(
                HEAD_KEY,
                set_fields={"to": digest.to, "hash": digest.hash},
                condition="#h = :previous",
                names={"#h": "hash"},
                values={":previous": digest.previousHash},
            )
        self.table.transact(
            [self.table.put(item, new=True), head],
            lambda codes: DigestRaced("another digest was stored since the newest this run read"),
        )

    def digests(
        self, at_from: str | None, at_to: str | None, limit: int, next_token: str | None
    ) -> Page[Digest]:
        low = digest_sk(at_from) if at_from else "DIGEST#"
        high = digest_sk(at_to) if at_to else "DIGEST#\uffff"
        kwargs: dict[str, Any] = {
            "KeyConditionExpression": "pk = :pk AND sk BETWEEN :low AND :high",
            "ExpressionAttributeValues": {":pk": DIGEST_PK, ":low": low, ":high": high},
            "ScanIndexForward": True,
        }
        if at_from:
            # A period that starts before the range is not wholly in it (nor is the first digest's).
            kwargs["FilterExpression"] = "#from >= :from"
            kwargs["ExpressionAttributeNames"] = {"#from": "from"}
            kwargs["ExpressionAttributeValues"][":from"] = at_from
        items, token = self.table.page(kwargs, "pk", DIGEST_PK, limit, next_token)
        return Page([_digest(item) for item in items], token)
