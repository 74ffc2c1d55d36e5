"""The checks of a DynamoDB update expression that depend on its text alone, made once per text.

Profiled after ``local.dynamodb_expressions`` (py-spy ``--gil`` at 50 Hz, 40 s of the bench's 50
concurrent requesters; docs/local-stack.md, "Under load"), moto 5.2.5's
``UpdateExpressionValidator.validate`` was about 20% of the stack process's GIL time, for two
updates per create (16 and 9 ``SET`` actions, written by the approval step). Two of its processors
are quadratic in the expression's size: ``ActionCountValidator`` and ``OverlappingPathsValidator``
act on every ``UpdateExpression`` node, and nearly every node of the tree is one (clauses,
actions, paths and values all subclass it), each time walking the whole subtree below
(``find_clauses``) to count its clauses or list its paths.

What these two check, and ``UpdateHashRangeKeyValidator`` (no key attribute is updated), depends
on the expression's text, its attribute names and the table's key attributes only, never on the
item or the values, and none of the three changes the tree (each answers the node it was given).
So once the three have passed for a (text, names, key attributes), a later validation of a kept
tree (``local.dynamodb_expressions``) with the same three runs only the processors that read the
item or the values. An expression they refuse is checked again every time (nothing is kept for
it), so it is refused as before, with the same error.

The other processors walk the tree once each, but moto's ``DepthFirstTraverser`` rebuilds the
processor's ``_processing_map()`` dict for every node it visits (``nodes_to_be_processed``) and
again for every node it processes (``process``): a third of the walks' time. Every processor's
map is a literal dict of its own bound methods, so it is built once per processor (a validation
makes new processors). And the walk's class checks (``isinstance`` against moto's node classes,
which are ``abc.ABCMeta`` classes answered by a Python-level ``__instancecheck__``, three to four
per node and processor: 16% of the GIL time once the rest was gone) are answered once per (class,
classes) and kept: a class's answer never changes, as nothing registers virtual subclasses of
moto's nodes.
"""

from __future__ import annotations

from typing import Any

from moto.dynamodb.parsing import ast_nodes as _ast_nodes
from moto.dynamodb.parsing import validators as _validators

from local import dynamodb_expressions

# moto's parsing modules are not typed.
ast_nodes: Any = _ast_nodes
validators: Any = _validators

CHECKED_KEPT = 4096  # (text, names, key attributes); this service writes a few dozen texts
TEXT_ONLY = (
    validators.ActionCountValidator,
    validators.OverlappingPathsValidator,
    validators.UpdateHashRangeKeyValidator,
)

_CHECKED: set[tuple[Any, ...]] = set()
_ORIGINAL: dict[str, Any] = {}


def _init(
    self: Any,
    expression: Any,
    expression_attribute_names: dict[str, str] | None,
    expression_attribute_values: Any,
    item: Any,
    table: Any,
) -> None:
    _ORIGINAL["init"](self, expression, expression_attribute_names, expression_attribute_values, item, table)
    self._text_checks = None
    text = dynamodb_expressions.text_of(expression)
    if text is None:
        return
    names = tuple(sorted((expression_attribute_names or {}).items()))
    key = (text, names, tuple(table.table_key_attrs))
    if key in _CHECKED:
        self.processors = [p for p in self.processors if not isinstance(p, TEXT_ONLY)]
    else:
        self._text_checks = key


def _validate(self: Any) -> Any:
    key = getattr(self, "_text_checks", None)
    if key is None:
        return _ORIGINAL["validate"](self)
    node = self.node_to_validate
    for processor in self.processors:
        node = processor.traverse(node)
        if not isinstance(processor, TEXT_ONLY) and key not in _CHECKED:
            if len(_CHECKED) >= CHECKED_KEPT:
                _CHECKED.clear()
            _CHECKED.add(key)  # the text-only checks (first in moto's order) have passed
    return node


def _types(self: Any) -> tuple[type, ...]:
    types = self.__dict__.get("_node_types")
    if types is None:
        types = self._node_types = tuple(self._processing_map())
    return types  # type: ignore[no-any-return]


# (a node's class, classes) -> whether it is one of them: the AST's classes are ``abc.ABCMeta``
# classes, whose ``isinstance`` goes through Python-level ``__instancecheck__``; the answer for a
# class never changes (nothing registers virtual subclasses of moto's nodes).
_IS_A: dict[tuple[type, Any], bool] = {}


def _is_a(kind: type, classes: Any) -> bool:
    known = _IS_A.get((kind, classes))
    if known is None:
        known = _IS_A[(kind, classes)] = issubclass(kind, classes)
    return known


def _process(self: Any, node: Any) -> Any:
    processing = self.__dict__.get("_processing")
    if processing is None:
        processing = self._processing = self._processing_map()
    for node_type, processor in processing.items():
        if _is_a(type(node), node_type):
            return processor(node)
    return None


def _traverse_node_recursively(self: Any, node: Any, child_id: int = -1) -> Any:
    """moto's ``DepthFirstTraverser.traverse_node_recursively``, its class checks answered from
    ``_IS_A``."""
    if _is_a(type(node), ast_nodes.Node):
        parent_node = node.parent
        if node.children is not None:
            for i, child_node in enumerate(node.children):
                self.pre_processing_of_child(node, i)
                self.traverse_node_recursively(child_node, i)
        if _is_a(type(node), self.nodes_to_be_processed()):
            node = self.process(node)
            node.parent = parent_node
            if parent_node:
                parent_node.children[child_id] = node
    return node


def install() -> None:
    """Patch moto's update expression validator in this process (idempotent)."""
    if _ORIGINAL:
        return
    # Every processor's ``_processing_map`` answers the same literal dict each time: it is built
    # once per processor, not twice per node of the tree.
    ast_nodes.DepthFirstTraverser.nodes_to_be_processed = _types
    ast_nodes.DepthFirstTraverser.process = _process
    ast_nodes.DepthFirstTraverser.traverse_node_recursively = _traverse_node_recursively
    dynamodb_expressions.install()
    validator = validators.UpdateExpressionValidator
    # moto's order: the three text-only checks come first, so skipping them changes no error.
    order = [type(p) for p in validator.get_ast_processors(_Probe())]
    assert order[: len(TEXT_ONLY)] == list(TEXT_ONLY), order
    _ORIGINAL["init"] = validator.__init__
    _ORIGINAL["validate"] = validator.validate
    validator.__init__ = _init
    validator.validate = _validate


class _Probe:
    """Enough of a validator for ``get_ast_processors`` to list moto's processors."""

    expression_attribute_names: dict[str, str] = {}
    expression_attribute_values: dict[str, Any] = {}
    item = None

    class table:  # noqa: N801 - stands in for the attribute
        table_key_attrs: list[str] = []
        attr: list[dict[str, str]] = []
        attribute_keys: list[str] = []


def clear() -> None:
    """Forget which texts passed (tests)."""
    _CHECKED.clear()
