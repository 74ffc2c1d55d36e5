"""``acctconn approvers list|put``: who approves each account's connections (operators only)."""

from __future__ import annotations

from typing import Any

import click

from acctconn.app import App, pass_app
from acctconn.errors import EXIT_CODES_HELP
from acctconn.output import Column
from acctconn.params import ACCOUNT_ID_TYPE, paging_options


def _escalation(value: Any, row: Any) -> str:
    targets = row.get("escalateTo") or []
    if not targets:
        return ""
    return f"after {row.get('escalateAfterSeconds')} s:\n" + "\n".join(targets)


def _seconds(value: Any, row: Any) -> str:
    return ", ".join(f"{delay} s" for delay in value or [])


COLUMNS = [
    Column("Account", "accountId"),
    Column("Approvers", "approvers"),
    Column("Quorum", "quorum"),
    Column("Reminders", "remindAfterSeconds", _seconds),
    Column("Escalation", "escalateTo", _escalation),
    Column("Principals", "approverPrincipals"),
    Column("Updated", "updatedAt"),
]

FIELDS = [*COLUMNS, Column("Updated by", "updatedBy")]


@click.group(epilog=EXIT_CODES_HELP, short_help="Who approves each account's requests (operators).")
def approvers() -> None:
    """Each account's approval policy: who approves its connection requests (operators only)."""


@approvers.command(
    "list",
    epilog="""\b
Examples:
  acctconn approvers list
  acctconn --json approvers list --all

"""
    + EXIT_CODES_HELP,
)
@paging_options(max_limit=100, default_limit=25)
@pass_app
def list_(app: App, limit: int, next_token: str | None, every_page: bool) -> None:
    """List the accounts' approval policies, by account ID.

    With --json: the page as the API sends it ({items, nextToken}), or with --all one array.
    """
    with app.client() as api:
        app.emit_list(
            api,
            "/approvers",
            {"limit": limit, "nextToken": next_token},
            COLUMNS,
            every_page=every_page,
            noun="accounts",
        )


@approvers.command(
    short_help="Register an account's administrator or approval policy.",
    epilog="""\b
Examples:
  acctconn approvers put 111122223333 --email admin@example.com
  acctconn approvers put 555566667777 \\
      --approver ops1@example.com --approver ops2@example.com --quorum 2 \\
      --remind-after 86400 --escalate-after 172800 --escalate-to security@example.com \\
      --principal arn:aws:iam::555566667777:role/Admin

"""
    + EXIT_CODES_HELP,
)
@click.argument("account_id", type=ACCOUNT_ID_TYPE)
@click.option("--email", metavar="EMAIL", help="One administrator, who alone approves (the plain policy).")
@click.option(
    "--approver",
    "approver_emails",
    multiple=True,
    metavar="EMAIL",
    help="An approver of a policy, emailed a link of their own; repeat for each (1-10).",
)
@click.option(
    "--quorum",
    type=click.IntRange(1, 10),
    help="How many approvers must approve (default 1; needs --approver).",
)
@click.option(
    "--remind-after",
    "remind_after",
    multiple=True,
    type=click.IntRange(min=60),
    metavar="SECONDS",
    help="Remind the undecided (a new link) this long after the request; repeat, ascending, each >= 60.",
)
@click.option(
    "--escalate-after",
    type=click.IntRange(min=60),
    metavar="SECONDS",
    help="Without the quorum this long after the request, email --escalate-to links (>= 60).",
)
@click.option(
    "--escalate-to",
    multiple=True,
    metavar="EMAIL",
    help="Who gets links, and counts as an approver, at the escalation; repeat for each.",
)
@click.option(
    "--principal",
    "principals",
    multiple=True,
    metavar="ARN",
    help="An IAM role or user of the account whose account proofs count (then only those); repeat for each.",
)
@pass_app
def put(
    app: App,
    account_id: str,
    email: str | None,
    approver_emails: tuple[str, ...],
    quorum: int | None,
    remind_after: tuple[int, ...],
    escalate_after: int | None,
    escalate_to: tuple[str, ...],
    principals: tuple[str, ...],
) -> None:
    """Register who approves ACCOUNT_ID's connection requests.

    Either --email (one administrator) or a policy: --approver for each approver, and
    optionally --quorum, --remind-after, --escalate-after with --escalate-to. Either form may
    name --principal. Timers count in seconds from the request and must fall before the
    approval window closes. This replaces the account's policy: the links of its pending
    requests stop working and the approvers now registered are sent new ones.
    """
    if (email is None) == (not approver_emails):
        raise click.UsageError("give either --email (one administrator) or --approver (a policy), not both")
    if email is not None and (
        quorum is not None or remind_after or escalate_after is not None or escalate_to
    ):
        raise click.UsageError("--quorum, --remind-after, --escalate-after and --escalate-to need --approver")
    if (escalate_after is None) != (not escalate_to):
        raise click.UsageError("--escalate-after and --escalate-to go together")
    body: dict[str, Any]
    if email is not None:
        body = {"email": email}
    else:
        body = {"approvers": list(approver_emails)}
        if quorum is not None:
            body["quorum"] = quorum
        if remind_after:
            body["remindAfterSeconds"] = list(remind_after)
        if escalate_after is not None:
            body["escalateAfterSeconds"] = escalate_after
            body["escalateTo"] = list(escalate_to)
    if principals:
        body["approverPrincipals"] = list(principals)
    with app.client() as api:
        app.emit_record(api.put_json(f"/approvers/{account_id}", body), FIELDS, title="Approval policy")
