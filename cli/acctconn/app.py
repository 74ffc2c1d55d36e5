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
from acctconn.api import ApiClient


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


pass_app = click.make_pass_decorator(App)
