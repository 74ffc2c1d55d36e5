"""DynamoDB expressions in moto parsed once, not two or three times per operation.

Profiled after ``local.stepfunctions_reuse`` and ``local.dynamodb_queries`` (py-spy ``--gil`` at
50 Hz, 40 s of the bench's 50 concurrent requesters; docs/local-stack.md, "Under load"), moto
5.2.5's DynamoDB spent about a quarter of the stack process's GIL time parsing and copying the
same expressions:

- a condition expression is parsed by ``ConditionExpressionParser.parse`` (a regex lexer in pure
  Python, then a tree) three times per operation of a ``TransactWriteItems``: by the response
  handler (to check the names it uses), by the backend's transaction (to test the condition), and
  again by ``put_item``/``update_item``/``delete_item``; ``UpdateItem`` parses it twice. About
  10% of the GIL time;
- an update expression is parsed by ``UpdateExpressionParser.make`` twice per update (the
  response handler, then ``update_item``), about 6.5%;
- ``UpdateExpressionValidator`` then deep-copies the parsed update expression (``copy.deepcopy``
  of a tree of small objects with parent links), about 7.6%, because its processors rewrite the
  tree they are given.

What each parse gives depends on its inputs only. A condition's tree (``Op``/``Func`` objects
holding attribute paths and the request's values) is only read by ``expr(item)``; so is an update
expression's tree, by the response handler's ``find_clauses``, while ``update_item`` hands it to the
validator, which works on a copy. So:

- a condition is parsed once per (expression, names, values): the tree is kept with the names
  and values it found (the response handler reads them from the parser) and shared; with the
  request's own values in the key, the three parses of one operation become one;
- an update expression is parsed once per expression text (the same few texts come back in every
  request), and the validator's copy of a kept tree is made with ``pickle.loads`` from bytes
  pickled once, about 6 times faster than ``copy.deepcopy`` and, like it, a new tree with the same
  shared references. Any other value the validator copies is copied as before.

An expression moto refuses raises as before (nothing is kept for it). Both caches are bounded.
"""

from __future__ import annotations

import copy
import json
import pickle
import threading
from typing import Any

from moto.dynamodb import comparisons
from moto.dynamodb.parsing import expressions as _expressions
from moto.dynamodb.parsing import validators as _validators

# moto's parsing modules are not typed (``# type: ignore`` where it imports them).
expressions: Any = _expressions
validators: Any = _validators

CONDITIONS_KEPT = 4096  # (expression, names, values): the values make most of them one request's
UPDATES_KEPT = 1024  # update expression texts; this service writes a few dozen

_Condition = tuple[Any, list[str], list[str]]  # the tree, the names found, the values found


class _Kept:
    """A bounded map: when full, it starts again empty (cheap, and safe without a lock: the
    worst a race costs is a parse done twice)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.entries: dict[Any, Any] = {}

    def get(self, key: Any) -> Any:
        return self.entries.get(key)

    def put(self, key: Any, value: Any) -> None:
        if len(self.entries) >= self.size:
            self.entries = {}
        self.entries[key] = value

    def clear(self) -> None:
        self.entries = {}


CONDITIONS = _Kept(CONDITIONS_KEPT)
UPDATES = _Kept(UPDATES_KEPT)
# id(tree) -> (tree, its pickle, its text): the trees ``make`` answers from UPDATES, for the
# validator's copy.
_PICKLED: dict[int, tuple[Any, bytes, str]] = {}
_LOCK = threading.Lock()
_ORIGINAL: dict[str, Any] = {}


def _parse_condition(parser: comparisons.ConditionExpressionParser) -> Any:
    if not parser.condition_expression:
        return _ORIGINAL["parse"](parser)
    names = parser.expression_attribute_names
    values = parser.expression_attribute_values
    try:
        values_json = json.dumps(values, sort_keys=True) if values else None
    except (TypeError, ValueError):  # values that are not JSON: parsed as before
        return _ORIGINAL["parse"](parser)
    key = (parser.condition_expression, tuple(sorted(names.items())) if names else None, values_json)
    kept: _Condition | None = CONDITIONS.get(key)
    if kept is None:
        # Parsed with a copy of the values of its own: the kept tree holds some of them (a set's
        # list, a map), and the request's own values may go into an item that a later update
        # changes in place (``ADD`` to a string set appends to its list).
        parser.expression_attribute_values = json.loads(values_json) if values_json else values
        try:
            op = _ORIGINAL["parse"](parser)
        finally:
            parser.expression_attribute_values = values
        CONDITIONS.put(key, (op, list(parser.expr_attr_names_found), list(parser.expr_attr_values_found)))
        return op
    op, names_found, values_found = kept
    parser.expr_attr_names_found.extend(names_found)
    parser.expr_attr_values_found.extend(values_found)
    return op


def _make_update(expression_str: str) -> Any:
    kept = UPDATES.get(expression_str)
    if kept is not None:
        return kept
    tree = _ORIGINAL["make"](expression_str)
    pickled = pickle.dumps(tree, pickle.HIGHEST_PROTOCOL)
    with _LOCK:
        if len(_PICKLED) >= UPDATES_KEPT:
            _PICKLED.clear()
            UPDATES.clear()
        _PICKLED[id(tree)] = (tree, pickled, expression_str)
        UPDATES.put(expression_str, tree)
    return tree


def _copy_for_validator(value: Any, memo: dict[int, Any] | None = None) -> Any:
    kept = _PICKLED.get(id(value))
    if kept is not None and kept[0] is value:
        return pickle.loads(kept[1])
    return copy.deepcopy(value, memo)


def text_of(tree: Any) -> str | None:
    """The update expression's text if ``tree`` is a kept tree (``make``'s answer), else None."""
    kept = _PICKLED.get(id(tree))
    return kept[2] if kept is not None and kept[0] is tree else None


def install() -> None:
    """Patch moto's DynamoDB expression parsing in this process (idempotent)."""
    if _ORIGINAL:
        return
    _ORIGINAL["parse"] = comparisons.ConditionExpressionParser.parse
    _ORIGINAL["make"] = expressions.UpdateExpressionParser.make
    comparisons.ConditionExpressionParser.parse = _parse_condition  # type: ignore[method-assign,assignment]
    expressions.UpdateExpressionParser.make = staticmethod(_make_update)
    validators.deepcopy = _copy_for_validator


def clear() -> None:
    """Forget the parsed expressions (tests)."""
    with _LOCK:
        CONDITIONS.clear()
        UPDATES.clear()
        _PICKLED.clear()
