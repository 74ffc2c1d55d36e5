"""``acctconn connections list|get|request|cancel``: a space's connection requests."""

from __future__ import annotations

from typing import Any

import click

from acctconn import output
from acctconn.api import ApiClient
from acctconn.app import App, pass_app
from acctconn.errors import EXIT_CODES_HELP, ApiError
from acctconn.output import Column
from acctconn.params import ACCOUNT_ID_TYPE, CONNECTION_ID_TYPE, STATUS_TYPE, paging_options


def _change(value: Any, row: Any) -> str:
    source, target = row.get("fromStatus"), row.get("toStatus")
    if source and target:
        return f"{source} -> {target}"
    return str(target or "")


LIST_COLUMNS = [
    Column("Connection", "connectionId"),
    Column("Account", "accountId"),
    Column("Name", "displayName"),
    Column("Status", "status"),
    Column("Created", "createdAt"),
    Column("Requested by", "requestedBy"),
]

FIELDS = [
    Column("Connection", "connectionId"),
    Column("Space", "spaceId"),
    Column("Account", "accountId"),
    Column("Name", "displayName"),
    Column("Description", "description"),
    Column("Status", "status"),
    Column("Reason", "reason"),
    Column("Requested by", "requestedBy"),
    Column("Created", "createdAt"),
    Column("Updated", "updatedAt"),
    Column("Expires", "expiresAt"),
    Column("Role ARNs", "roleArns"),
    Column("Quorum", "quorum"),
    Column("Decided by", "decidedBy"),
    Column("Decided", "decidedAt"),
    Column("Decision method", "decisionMethod"),
    Column("Proven principal", "provenPrincipal"),
    Column("Paid tiers", "paidTiersAuthorized"),
    Column("Verified", "verifiedAt"),
    Column("Disconnected", "disconnectedAt"),
]

ROLE_COLUMNS = [
    Column("Role", "roleName"),
    Column("Attached", "attached"),
    Column("Reason", "reason"),
    Column("Checked", "checkedAt"),
]

APPROVAL_COLUMNS = [
    Column("Approver", "approver"),
    Column("Method", "decisionMethod"),
    Column("At", "at"),
    Column("Paid tiers", "paidTiersAuthorized"),
]

HISTORY_COLUMNS = [
    Column("At", "at"),
    Column("Event", "type"),
    Column("Actor", "actor"),
    Column("Status", "toStatus", _change),
    Column("Detail", "detail"),
]


def connection_path(space_id: str, connection_id: str | None = None) -> str:
    path = f"/spaces/{space_id}/connections"
    return f"{path}/{connection_id}" if connection_id else path


@click.group(epilog=EXIT_CODES_HELP, short_help="List, read, request and cancel a space's connections.")
def connections() -> None:
    """A space's connection requests: list, read, request and cancel them.

    Reading needs membership of the space; requesting and cancelling need SPACE_ADMIN or
    POWER_USER.
    """


@connections.command(
    "list",
    epilog="""\b
Examples:
  acctconn connections list demo
  acctconn connections list demo --status PENDING_APPROVAL
  acctconn --json connections list demo --all > connections.json

"""
    + EXIT_CODES_HELP,
)
@click.argument("space_id")
@click.option("--status", type=STATUS_TYPE, help="Only connections in this status.")
@paging_options(max_limit=100, default_limit=25)
@pass_app
def list_(
    app: App, space_id: str, status: str | None, limit: int, next_token: str | None, every_page: bool
) -> None:
    """List the connections of SPACE_ID, newest first.

    One page by default (--limit, then --next-token for the next); --all follows every page.
    With --json: the page as the API sends it ({items, nextToken}), or with --all one array of
    every connection.
    """
    with app.client() as api:
        app.emit_list(
            api,
            connection_path(space_id),
            {"status": status, "limit": limit, "nextToken": next_token},
            LIST_COLUMNS,
            every_page=every_page,
            noun="connections",
        )


def whole_history(api: ApiClient, path: str, connection: dict[str, Any]) -> dict[str, Any]:
    """``connection`` with every page of its history (the API sends it in pages of 100)."""
    if not isinstance(connection, dict):
        raise ApiError(f"GET {path}: the answer is not a connection")
    history = list(connection.get("history") or [])
    next_token = connection.get("historyNextToken")
    if not next_token:
        return connection
    while next_token:
        page = api.get_json(path, {"historyNextToken": next_token})
        if not isinstance(page, dict) or not isinstance(page.get("history"), list):
            raise ApiError(f"GET {path}: the answer is not a page of the history")
        history.extend(page["history"])
        next_token = page.get("historyNextToken")
    return {**connection, "history": history, "historyNextToken": None}


@connections.command(
    short_help="Show one connection with its roles, approvals and history.",
    epilog="""\b
Examples:
  acctconn connections get demo 0f8fad5b-d9cb-469f-a165-70867728950e
  acctconn --json connections get demo 0f8fad5b-d9cb-469f-a165-70867728950e | jq .status

"""
    + EXIT_CODES_HELP,
)
@click.argument("space_id")
@click.argument("connection_id", type=CONNECTION_ID_TYPE)
@pass_app
def get(app: App, space_id: str, connection_id: str) -> None:
    """Show one connection of SPACE_ID with its roles, its approvals and its history.

    The history is the whole of it, oldest first (the API's pages are followed); --json prints
    the API's connection with that whole history in `history`.
    """
    path = connection_path(space_id, connection_id)
    with app.client() as api:
        connection = whole_history(api, path, api.get_json(path))
    if app.json_output:
        output.print_json(connection)
        return
    output.print_record(connection, FIELDS, title="Connection")
    for title, key, columns in (
        ("Roles", "roles", ROLE_COLUMNS),
        ("Approvals", "approvals", APPROVAL_COLUMNS),
        ("History", "history", HISTORY_COLUMNS),
    ):
        rows = connection.get(key) or []
        if rows:
            output.print_table(rows, columns, title=title)


@connections.command(
    epilog="""\b
Examples:
  acctconn connections request demo --account 111122223333 --name Production \\
      --description "Deploy target" --role arn:aws:iam::111122223333:role/BuildRole
  acctconn connections request demo --account 111122223333 --name Production \\
      --idempotency-key "$(uuidgen)"    # safe to retry with the same key

"""
    + EXIT_CODES_HELP,
)
@click.argument("space_id")
@click.option(
    "--account", "account_id", required=True, type=ACCOUNT_ID_TYPE, help="The AWS account ID (12 digits)."
)
@click.option(
    "--name", "display_name", required=True, help="How the space shows the account (1-100 characters)."
)
@click.option("--description", help="What the connection is for (at most 1000 characters).")
@click.option(
    "--role",
    "role_arns",
    multiple=True,
    metavar="ARN",
    help="An IAM role of the account to attach once verified; repeat for more (at most 10).",
)
@click.option(
    "--idempotency-key",
    metavar="KEY",
    help="Makes retries safe: the same key and request answer the same connection.",
)
@pass_app
def request(
    app: App,
    space_id: str,
    account_id: str,
    display_name: str,
    description: str | None,
    role_arns: tuple[str, ...],
    idempotency_key: str | None,
) -> None:
    """Ask to connect an AWS account to SPACE_ID.

    The account's approvers are emailed a link to approve it. The answer includes the
    connection token: it is shown only this once. Hand it to the account's administrator
    only if they are to decide with it (with an account proof, see `acctconn prove`).
    """
    body: dict[str, Any] = {"accountId": account_id, "displayName": display_name}
    if description is not None:
        body["description"] = description
    if role_arns:
        body["roleArns"] = list(role_arns)
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
    with app.client() as api:
        created = api.post_json(connection_path(space_id), body, headers=headers)
    if app.json_output:
        output.print_json(created)
    else:
        output.print_record(
            created, [*FIELDS, Column("Connection token", "connectionToken")], title="Requested"
        )
    token = created.get("connectionToken") if isinstance(created, dict) else None
    if token:
        output.note(
            "The connection token is shown only this once: keep it if the administrator is to decide with it."
        )
    else:
        output.note("No connection token: this request is no longer pending.")


@connections.command(
    short_help="Cancel a pending request, or disconnect a verified connection.",
    epilog="""\b
Examples:
  acctconn connections cancel demo 0f8fad5b-d9cb-469f-a165-70867728950e

"""
    + EXIT_CODES_HELP,
)
@click.argument("space_id")
@click.argument("connection_id", type=CONNECTION_ID_TYPE)
@pass_app
def cancel(app: App, space_id: str, connection_id: str) -> None:
    """Cancel a pending request of SPACE_ID, or disconnect a verified connection.

    A pending request becomes CANCELLED (every approval link stops working); a verified
    connection becomes DISCONNECTED. Any other status is refused (exit 1). Prints the
    connection as it now is.
    """
    with app.client() as api:
        connection = api.delete_json(connection_path(space_id, connection_id))
    app.emit_record(connection, FIELDS, title="Connection")
