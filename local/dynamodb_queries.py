"""DynamoDB Query in moto reading one partition, not the whole table.

moto 5.2.5's ``Table.query`` on a table's own key (no index) finds its candidates with
``[item for item in self.all_items() if item.hash_key == hash_key]``, and ``all_items`` lists and
sorts every item of the table: a Query costs O(n log n) in the table's size, whatever the
partition holds. This service's state table gains several items with every request (the
request, its token, links, events), so after the bench's 1,000 creates each Query (a decision
reads its request's partition) listed and sorted thousands of items under the DynamoDB lock
(``local.dynamodb_transactions``), and 50 concurrent approvals queued behind each other: in
py-spy, about a fifth of the stack process's samples were threads waiting for that lock while a
Query sorted the table.

Here, while a Query without an index runs, ``all_items`` on that table answers only the queried
partition (``Table.items[hash_key]``, moto's own store); ``query`` still filters by the hash key
and sorts by the range key itself, so its answer is the same. Index queries
(moto scans for those too, and would need an index of its own) and scans are left as they are.
"""

from __future__ import annotations

import threading
from functools import wraps
from typing import Any

from moto.dynamodb.models.table import Table

_QUERYING = threading.local()  # (table, hash key) of the Query this thread is running


def _partition(table: Table, hash_key: Any) -> list[Any]:
    stored = table.items.get(hash_key)
    if stored is None:
        return []
    return list(stored.values()) if table.range_key_attr else [stored]


def install() -> None:
    """Patch moto's DynamoDB table in this process (idempotent)."""
    if getattr(Table, "_account_connections_partition_query", False):
        return
    original_all_items = Table.all_items
    original_query = Table.query

    @wraps(original_all_items)
    def all_items(self: Table) -> Any:
        querying = getattr(_QUERYING, "partition", None)
        if querying is not None and querying[0] is self:
            return _partition(self, querying[1])
        return original_all_items(self)

    @wraps(original_query)
    def query(self: Table, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
        index_name = kwargs.get("index_name", args[6] if len(args) > 6 else None)
        if index_name or hash_key is None:
            return original_query(self, hash_key, *args, **kwargs)
        _QUERYING.partition = (self, hash_key)
        try:
            return original_query(self, hash_key, *args, **kwargs)
        finally:
            _QUERYING.partition = None

    Table.all_items = all_items  # type: ignore[method-assign]
    Table.query = query  # type: ignore[method-assign]
    Table._account_connections_partition_query = True  # type: ignore[attr-defined]
