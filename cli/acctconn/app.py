"""What the global options give every command: the API's address, the token, the output mode.

A command takes it with ``@pass_app``::

    @click.command()
    @pass_app
    def something(app: App) -> None:
        with app.client() as api:
            app.emit(api.get_json("/approvers"), columns=[...])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import click

from acctconn import output
from acctconn.api import ApiClient, Params


@dataclass(frozen=True)
class App:
    api_url: str
    token: str | None
    json_output: bool

    def client(self) -> ApiClient:
        return ApiClient(self.api_url, self.token)

    def emit(self, data: Any, columns: Sequence[output.Column] = (), *, title: str | None = None) -> None:
        """``data`` as JSON with ``--json``, else as a table of ``columns`` (or JSON without any)."""
        if self.json_output or not columns:
            output.print_json(data)
        else:
            rows = data if isinstance(data, list) else [data]
            output.print_table(rows, columns, title=title)

    def emit_record(self, data: Any, fields: Sequence[output.Column], *, title: str | None = None) -> None:
        """One object: as JSON with ``--json``, else a field a line."""
        if self.json_output:
            output.print_json(data)
        else:
            output.print_record(data, fields, title=title)

    def emit_list(
        self,
        api: ApiClient,
        path: str,
        params: Params,
        columns: Sequence[output.Column],
        *,
        every_page: bool,
        noun: str,
        title: str | None = None,
    ) -> None:
        """A paginated list. One page: with ``--json`` the page as the API sent it (``items``
        and ``nextToken``), else a table and, when there is more, a hint on stderr. With
        ``every_page`` it follows ``nextToken`` to the end: ``--json`` prints one array of every item."""
        next_token: str | None = None
        if every_page:
            items: list[Any] = list(api.paginate(path, params))
            if self.json_output:
                output.print_json(items)
                return
        else:
            page = api.get_page(path, params)
            if self.json_output:
                output.print_json(page)
                return
            items = page["items"]
            next_token = page.get("nextToken") or None
        caption = f"{len(items)} {noun}" + (", more to come" if next_token else "")
        output.print_table(items, columns, title=title, caption=caption)
        if next_token:
            output.note(more_hint(next_token))


def more_hint(next_token: str) -> str:
    return f"More on the next page: repeat with --all, or with --next-token {next_token}"


pass_app = click.make_pass_decorator(App)
