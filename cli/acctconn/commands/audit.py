"""``acctconn audit connections|events``: the auditors' queries (the ``auditors`` group), as
tables, JSON or the API's own CSV.

Other ``audit`` commands (export, verify) register on the same group: ``audit.add_command(...)``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import click

from acctconn import output
from acctconn.api import Params
from acctconn.app import App, more_hint, pass_app
from acctconn.commands.connections import HISTORY_COLUMNS
from acctconn.errors import EXIT_CODES_HELP
from acctconn.output import Column
from acctconn.params import ACCOUNT_ID_TYPE, CONNECTION_ID_TYPE, STATUS_TYPE, paging_options

CONNECTION_COLUMNS = [
    Column("Connection", "connectionId"),
    Column("Space", "spaceId"),
    Column("Account", "accountId"),
    Column("Name", "displayName"),
    Column("Status", "status"),
    Column("Created", "createdAt"),
    Column("Requested by", "requestedBy"),
]

EVENT_COLUMNS = [
    HISTORY_COLUMNS[0],
    Column("Connection", "connectionId"),
    Column("Space", "spaceId"),
    Column("Account", "accountId"),
    *HISTORY_COLUMNS[1:],
]

DATES_HELP = "Each an ISO 8601 date (2026-01-31) or date-time (2026-01-31T12:00:00Z), inclusive."


def date_options(what: str) -> Any:
    def decorate(command: Any) -> Any:
        command = click.option(
            "--to", "to", metavar="WHEN", help=f"{what} up to WHEN (a date: its whole day)."
        )(command)
        command = click.option("--from", "from_", metavar="WHEN", help=f"{what} from WHEN. {DATES_HELP}")(
            command
        )
        return command

    return decorate


csv_option = click.option(
    "--csv",
    "as_csv",
    is_flag=True,
    help="Print the API's CSV (Accept: text/csv) as it sends it, instead of a table or JSON.",
)


@click.group(epilog=EXIT_CODES_HELP, short_help="Query every request and every change (auditors).")
def audit() -> None:
    """Every connection request and every recorded change, for auditors (the auditors group)."""


def first_line(text: str) -> tuple[str, str]:
    """``text`` split after its first line (its terminator included)."""
    end = text.find("\n")
    return (text, "") if end < 0 else (text[: end + 1], text[end + 1 :])


def write_csv(pages: Iterable[str]) -> None:
    """The CSV pages on stdout as sent, but the header only once: each page repeats it."""
    header: str | None = None
    for text in pages:
        line, rest = first_line(text)
        if header is None:
            header = line
            click.echo(text, nl=False)
        else:
            click.echo(rest if line == header else text, nl=False)


def query(
    app: App,
    path: str,
    params: Params,
    columns: Sequence[Column],
    *,
    as_csv: bool,
    every_page: bool,
    noun: str,
) -> None:
    with app.client() as api:
        if not as_csv:
            app.emit_list(api, path, params, columns, every_page=every_page, noun=noun)
        elif every_page:
            write_csv(api.paginate_csv(path, params))
        else:
            text, next_token = api.get_csv(path, params)
            write_csv([text])
            if next_token:
                output.note(more_hint(next_token))


@audit.command(
    "connections",
    short_help="Every connection request, by status, space, account and date.",
    epilog="""\b
Examples:
  acctconn audit connections --account 111122223333 --status VERIFIED
  acctconn audit connections --space demo --from 2026-01-01 --to 2026-01-31
  acctconn audit connections --from 2026-01-01 --csv --all > connections.csv

"""
    + EXIT_CODES_HELP,
)
@click.option("--status", type=STATUS_TYPE, help="Only connections in this status.")
@click.option("--space", "space_id", metavar="SPACE_ID", help="Only this space's connections.")
@click.option("--account", "account_id", type=ACCOUNT_ID_TYPE, help="Only this account's connections.")
@date_options("Requests made")
@csv_option
@paging_options(max_limit=1000, default_limit=100)
@pass_app
def audit_connections(
    app: App,
    status: str | None,
    space_id: str | None,
    account_id: str | None,
    from_: str | None,
    to: str | None,
    as_csv: bool,
    limit: int,
    next_token: str | None,
    every_page: bool,
) -> None:
    """Every connection request, newest first, by status, space, account and creation date.

    A filtered page may hold fewer than --limit items while more follow: --all follows every
    page (with --csv, the CSV of every page under one header line; with --json, one array).
    """
    params = {
        "status": status,
        "spaceId": space_id,
        "accountId": account_id,
        "from": from_,
        "to": to,
        "limit": limit,
        "nextToken": next_token,
    }
    query(
        app,
        "/audit/connections",
        params,
        CONNECTION_COLUMNS,
        as_csv=as_csv,
        every_page=every_page,
        noun="connections",
    )


@audit.command(
    "events",
    short_help="Every recorded change, by connection, actor and date.",
    epilog="""\b
Examples:
  acctconn audit events --connection 0f8fad5b-d9cb-469f-a165-70867728950e
  acctconn audit events --actor alice --from 2026-01-01
  acctconn audit events --from 2026-01-01 --to 2026-01-31 --csv --all > events.csv

"""
    + EXIT_CODES_HELP,
)
@click.option("--connection", "connection_id", type=CONNECTION_ID_TYPE, help="Only this connection's events.")
@click.option("--actor", metavar="USER", help="Only changes made by this user (the JWT sub).")
@date_options("Changes made")
@csv_option
@paging_options(max_limit=1000, default_limit=100)
@pass_app
def audit_events(
    app: App,
    connection_id: str | None,
    actor: str | None,
    from_: str | None,
    to: str | None,
    as_csv: bool,
    limit: int,
    next_token: str | None,
    every_page: bool,
) -> None:
    """Every recorded change, newest first, by connection, actor and date.

    Besides each connection's changes, the operators' changes of spaces, members and
    approvers (no connection). --all follows every page (with --csv, under one header line).
    """
    params = {
        "connectionId": connection_id,
        "actor": actor,
        "from": from_,
        "to": to,
        "limit": limit,
        "nextToken": next_token,
    }
    query(app, "/audit/events", params, EVENT_COLUMNS, as_csv=as_csv, every_page=every_page, noun="events")
