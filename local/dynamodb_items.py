"""A DynamoDB item in moto built with one size check, not one per attribute.

Profiled after ``local.dynamodb_responses`` (py-spy ``--gil`` at 50 Hz, 40 s of the bench's 50
concurrent requesters; docs/local-stack.md, "Under load"), moto 5.2.5's ``LimitedSizeDict`` was
about 10% of the stack process's GIL time, 6% of it building items (``Item.__init__``, for every
``PutItem`` and every ``Put`` of a transaction). ``LimitedSizeDict.__setitem__`` keeps an item
under DynamoDB's 400 KB by summing the size of every key and value already in the item, then the
new one's, at each attribute set; ``Item.__init__`` sets the attributes one by one, so an item of
n attributes is sized n(n+1)/2 times (this service's connection items have about 30).

Sizes are not negative, so of those checks the last one, the whole item's size, is the largest:
when it is within the limit every earlier one is too, and when it is not, moto's own loop runs to
refuse the item at the attribute it would have refused it at. So ``Item.__init__`` sums the sizes
once, as ``__setitem__`` counts them (a key's UTF-8 bytes, a value's ``size()``), and fills the
dict in one step when that sum is within the limit (otherwise, or for a value moto cannot read,
moto's own ``__init__`` runs). Updates (``SetExecutor``, one attribute at a
time) keep moto's check.
"""

from __future__ import annotations

from typing import Any

from moto.dynamodb.models import dynamo_type
from moto.dynamodb.models.dynamo_type import DynamoType, Item, LimitedSizeDict
from moto.dynamodb.models.utilities import bytesize

ITEM_SIZE_LIMIT = 405000  # LimitedSizeDict's own limit (moto measured DynamoDB's between 409 and 410 KB)
_ORIGINAL: dict[str, Any] = {}


def _size_of(key: str, value: Any) -> int:
    return bytesize(str(key)) + (value.size() if type(value) is DynamoType else bytesize(str(value)))


def _init(self: Item, hash_key: DynamoType, range_key: DynamoType | None, attrs: dict[str, Any]) -> None:
    try:
        values = [(key, DynamoType(value)) for key, value in attrs.items()]
        within = sum(_size_of(key, value) for key, value in values) <= ITEM_SIZE_LIMIT
    except Exception:  # a value moto cannot read: its own loop raises what it raises, where it does
        within = False
    if not within:  # too large: refused where moto refuses it
        _ORIGINAL["init"](self, hash_key, range_key, attrs)
        return
    self.hash_key = hash_key
    self.range_key = range_key
    self.attrs = LimitedSizeDict()
    dict.update(self.attrs, values)


def install() -> None:
    """Patch moto's DynamoDB items in this process (idempotent)."""
    if _ORIGINAL:
        return
    # The limit is moto's: checked against its source, so a moto that changes it is noticed.
    import inspect

    assert str(ITEM_SIZE_LIMIT) in inspect.getsource(dynamo_type.LimitedSizeDict.__setitem__)
    _ORIGINAL["init"] = Item.__init__
    Item.__init__ = _init  # type: ignore[method-assign]
