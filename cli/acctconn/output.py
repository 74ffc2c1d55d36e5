"""Output on stdout: JSON for machines (``--json``), rich tables for people.

Only the result goes to stdout; messages for people (errors, hints, progress) go to stderr.
Tables have no vertical rules and never cut a value (an id, an ARN). A list too wide for the
terminal is printed as one block of fields per item instead; written to a pipe or a file (no
terminal, no ``COLUMNS``), a table is as wide as its rows, one line each, for grep and less.
rich prints no colour or style when stdout is not a terminal (or ``NO_COLOR`` is set).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import click
from rich import box
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

Format = Callable[[Any, Mapping[str, Any]], str]


@dataclass(frozen=True)
class Column:
    """A table column: its header and the key of each row it shows (``a.b`` reaches into ``a``).

    ``format`` turns the value (and the row) into the cell's text, where the plain value would
    not read well (a list, a status change)."""

    header: str
    key: str
    format: Format | None = None

    def value(self, row: Mapping[str, Any]) -> str:
        value: Any = row
        for part in self.key.split("."):
            value = value.get(part) if isinstance(value, Mapping) else None
        if self.format is not None:
            return self.format(value, row)
        if value is None:
            return ""
        if isinstance(value, bool):
            return "yes" if value else "no"
        if isinstance(value, list) and all(isinstance(item, str | int) for item in value):
            return "\n".join(str(item) for item in value)
        if isinstance(value, list | dict):
            return json.dumps(value, ensure_ascii=False)
        return str(value)


def print_json(data: Any) -> None:
    """``data`` as indented JSON, alone on stdout."""
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


def console(width: int | None = None) -> Console:
    # Made per call, so that it writes to the sys.stdout of the moment (click's test runner swaps it).
    return Console(highlight=False, emoji=False, width=width)


def print_table(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[Column],
    *,
    title: str | None = None,
    caption: str | None = None,
) -> None:
    """One row per item of ``rows``, one column per ``columns``; in a terminal too narrow for
    that, one block of fields per item."""
    table = Table(title=title, caption=caption, box=box.SIMPLE_HEAD, title_justify="left")
    for column in columns:
        table.add_column(column.header, overflow="fold")
    for row in rows:
        # Values are data, not rich markup: a "[bold]" in a display name stays text.
        table.add_row(*(Text(column.value(row)) for column in columns))
    out = console()
    wanted = Measurement.get(out, out.options.update_width(100_000), table).maximum
    if not out.is_terminal and "COLUMNS" not in os.environ:
        out = console(width=max(wanted, out.width))
    elif wanted > out.width and rows:
        if title:
            out.print(Text(title))
        for row in rows:
            print_record(row, columns)
        if caption:
            out.print(Text(caption))
        return
    out.print(table)


def print_record(row: Mapping[str, Any], fields: Sequence[Column], *, title: str | None = None) -> None:
    """One item as a two-column table, a field a line; fields with no value are left out."""
    table = Table(title=title, box=box.SIMPLE, show_header=False, title_justify="left")
    table.add_column("field", style="bold", no_wrap=True)
    table.add_column("value", overflow="fold")
    for field in fields:
        text = field.value(row)
        if text:
            table.add_row(Text(field.header), Text(text))
    console().print(table)


def note(message: str) -> None:
    """A line for the person at the terminal, on stderr: never mixed with the result."""
    click.echo(message, err=True)
