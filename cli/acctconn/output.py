"""Output on stdout: JSON for machines (``--json``), a rich table for people.

Only the result goes to stdout; messages for people (errors, progress) go to stderr.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text


@dataclass(frozen=True)
class Column:
    """A table column: its header and the key of each row it shows (``a.b`` reaches into ``a``)."""

    header: str
    key: str

    def value(self, row: Mapping[str, Any]) -> str:
        value: Any = row
        for part in self.key.split("."):
            value = value.get(part) if isinstance(value, Mapping) else None
        if value is None:
            return ""
        if isinstance(value, list | dict):
            return json.dumps(value, ensure_ascii=False)
        return str(value)


def print_json(data: Any) -> None:
    """``data`` as indented JSON, alone on stdout."""
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


def print_table(
    rows: Sequence[Mapping[str, Any]], columns: Sequence[Column], *, title: str | None = None
) -> None:
    table = Table(*(column.header for column in columns), title=title)
    for row in rows:
        # Values are data, not rich markup: a "[bold]" in a display name stays text.
        table.add_row(*(Text(column.value(row)) for column in columns))
    Console().print(table)
