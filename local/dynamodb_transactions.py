"""DynamoDB transactions in moto, made safe and cheap under concurrency.

moto 5.2.5's ``transact_write_items`` deep-copies every table it touches (once per operation)
to roll back on failure, without a lock. Under concurrent requests that copy races other
writes (a 500, ``dictionary changed size during iteration``), a rollback puts back a table
that drops the writes other threads made meanwhile, and the cost grows with the table: the
load benchmark saw one create per second and gigabytes of copies. DynamoDB itself serializes
conflicting transactions and never loses a write, so the local stack must too.

Here every DynamoDB write in moto takes one lock, and a transaction snapshots only the items
it names (a deep copy of each, or their absence) and restores exactly those on failure. Reads
take the same lock: moto applies a transaction's items one by one (an update of a new item even
creates it with its keys alone first), so a read between two of them would see what DynamoDB
never shows, a transaction half written (the hash chains' heads read so found an item without
its head).
"""

from __future__ import annotations

import copy
import threading
from functools import wraps
from typing import Any

from moto.dynamodb import models as dynamodb_models
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.dynamodb.models.table import Table

WRITE_LOCK = threading.RLock()
_IN_TRANSACTION = threading.local()
_WRITES = ("put_item", "update_item", "delete_item", "batch_write_item", "transact_write_items")
_READS = ("get_item", "batch_get_item", "transact_get_items", "query", "scan")


class _CopyWithoutTableBackups:
    """moto's ``copy`` module, except that inside a transaction a whole table is not copied:
    the items the transaction names are snapshotted instead."""

    def __getattr__(self, name: str) -> Any:
        return getattr(copy, name)

    @staticmethod
    def deepcopy(value: Any, memo: dict[int, Any] | None = None) -> Any:
        if isinstance(value, Table) and getattr(_IN_TRANSACTION, "active", False):
            return value
        return copy.deepcopy(value, memo)


def _key_of(table: Table, op: dict[str, Any]) -> tuple[DynamoType, DynamoType | None] | None:
    key = op.get("Key") or op.get("Item") or {}
    if table.hash_key_attr not in key:
        return None
    range_value = None
    if table.range_key_attr:
        if table.range_key_attr not in key:
            return None
        range_value = DynamoType(key[table.range_key_attr])
    return DynamoType(key[table.hash_key_attr]), range_value


def _snapshot(backend: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    snapshots = []
    for entry in transact_items:
        op: dict[str, Any] = next(iter(entry.values()), {}) if entry else {}
        table = backend.tables.get(op.get("TableName", ""))
        key = _key_of(table, op) if table is not None else None
        if table is None or key is None:
            continue
        try:
            existing = table.get_item(*key)
        except Exception:  # an invalid key: the transaction itself will refuse it
            continue
        snapshots.append((table, *key, copy.deepcopy(existing)))
    return snapshots


def _restore(snapshots: list[tuple[Any, ...]]) -> None:
    for table, hash_value, range_value, item in reversed(snapshots):
        if table.range_key_attr:
            if item is None:
                table.items.get(hash_value, {}).pop(range_value, None)
                if hash_value in table.items and not table.items[hash_value]:
                    del table.items[hash_value]
            else:
                table.items[hash_value][range_value] = item
        elif item is None:
            table.items.pop(hash_value, None)
        else:
            table.items[hash_value] = item


def install() -> None:
    """Patch moto's DynamoDB backend in this process (idempotent)."""
    if getattr(DynamoDBBackend, "_account_connections_serialized", False):
        return
    dynamodb_models.copy = _CopyWithoutTableBackups()  # type: ignore[assignment]
    original_transact = DynamoDBBackend.transact_write_items

    def transact_write_items(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
        snapshots = _snapshot(self, transact_items)
        _IN_TRANSACTION.active = True
        try:
            original_transact(self, transact_items)
        except BaseException:
            _restore(snapshots)
            raise
        finally:
            _IN_TRANSACTION.active = False

    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]
    for name in (*_WRITES, *_READS):
        setattr(DynamoDBBackend, name, _serialized(getattr(DynamoDBBackend, name)))
    DynamoDBBackend._account_connections_serialized = True  # type: ignore[attr-defined]


def _serialized(method: Any) -> Any:
    @wraps(method)
    def locked(*args: Any, **kwargs: Any) -> Any:
        with WRITE_LOCK:
            return method(*args, **kwargs)

    return locked
