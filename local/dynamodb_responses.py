"""DynamoDB's attribute values in moto's responses written as they are, not member by member.

Profiled after ``local.dynamodb_update_checks`` (py-spy ``--gil`` at 50 Hz, 40 s of the bench's 50
concurrent requesters; docs/local-stack.md, "Under load"), moto 5.2.5's response serializer was
about 14% of the stack process's GIL time, nearly all of it on DynamoDB's items (``GetItem``,
``Query``, ``ReturnValues``). moto keeps an item as its wire form already (``{"S": "..."}``,
``{"M": {...}}``), but ``ResponseSerializer`` walks it against botocore's model: every attribute
value is an ``AttributeValue`` structure of ten members, and for each member it asks its attribute
picker (``XFormedAttributePicker``: the member's name, its snake_case form, prefixes stripped) for
a value, so one string attribute costs ten lookups and their alias objects.

For an ``AttributeValue`` that is a dict of one of the types moto writes as plain JSON (``S`` and
``N`` with a string, ``BOOL`` and ``NULL`` with a bool, ``SS`` and ``NS`` with a list of strings,
``M`` and ``L`` of such values), what the serializer writes is that same dict: strings stay
strings, booleans booleans, lists and maps are rebuilt with the same entries. So such a value is
copied as it is. Anything else (binary values, which the serializer base64-encodes; a value of
another Python type; a serializer with response transformers, which DynamoDB does not have) goes
through moto's serializer as before.
"""

from __future__ import annotations

from typing import Any

from moto.core import serialize

_SCALARS = {"S": str, "N": str, "BOOL": bool, "NULL": bool}
_SETS = ("SS", "NS")
_ORIGINAL: dict[str, Any] = {}


class _Other(Exception):
    """A value this module leaves to moto's serializer."""


def plain(value: Any) -> dict[str, Any]:
    """``value`` as moto's serializer writes an ``AttributeValue``, or ``_Other``."""
    if type(value) is not dict or len(value) != 1:
        raise _Other
    ((kind, inner),) = value.items()
    scalar = _SCALARS.get(kind)
    if scalar is not None:
        if type(inner) is not scalar:
            raise _Other
        return {kind: inner}
    if kind in _SETS:
        if type(inner) is not list or any(type(entry) is not str for entry in inner):
            raise _Other
        return {kind: list(inner)}
    if kind == "M" and type(inner) is dict:
        return {"M": {name: plain(entry) for name, entry in inner.items()}}
    if kind == "L" and type(inner) is list:
        return {"L": [plain(entry) for entry in inner]}
    raise _Other


def _serialize_structure(self: Any, serialized: Any, value: Any, shape: Any, key: str) -> None:
    transformers = getattr(self._value_picker, "response_transformers", None)
    if key and shape.name == "AttributeValue" and not transformers:
        try:
            written = plain(value)
        except _Other:
            pass
        else:
            self._default_serialize(serialized, written, shape, key)
            return
    _ORIGINAL["structure"](self, serialized, value, shape, key)


def install() -> None:
    """Patch moto's JSON response serializer in this process (idempotent)."""
    if _ORIGINAL:
        return
    _ORIGINAL["structure"] = serialize.BaseJSONSerializer._serialize_type_structure
    serialize.BaseJSONSerializer._serialize_type_structure = _serialize_structure  # type: ignore[method-assign]


def original_structure() -> Any:
    """moto's own ``_serialize_type_structure`` (tests compare with it)."""
    return _ORIGINAL.get("structure", serialize.BaseJSONSerializer._serialize_type_structure)
