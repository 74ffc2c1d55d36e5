"""Argument types shared by the commands: each refuses a bad value as a usage error (exit 2)."""

from __future__ import annotations

import re
from typing import Any

import click
import httpx

CONNECTION_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


class ConnectionIdType(click.ParamType):
    """A connection id: a UUID in lowercase hex with dashes, 36 characters."""

    name = "CONNECTION_ID"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text = str(value)
        if not CONNECTION_ID.fullmatch(text):
            self.fail(
                f"{text!r} is not a connection id: expected a UUID in lowercase hex with dashes, "
                "36 characters (e.g. 0f8fad5b-d9cb-469f-a165-70867728950e)",
                param,
                ctx,
            )
        return text


class HttpUrlType(click.ParamType):
    """An absolute http(s) URL with a host and no credentials, query or fragment in it."""

    name = "URL"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text = str(value)
        try:
            url = httpx.URL(text)
        except httpx.InvalidURL as exc:
            self.fail(f"{text!r} is not a URL: {exc}", param, ctx)
        if url.scheme not in ("http", "https") or not url.host:
            self.fail(f"{text!r} is not an http(s) URL with a host", param, ctx)
        if url.userinfo or url.query or url.fragment:
            self.fail(f"{text!r} must not carry credentials, a query or a fragment", param, ctx)
        return text


CONNECTION_ID_TYPE = ConnectionIdType()
HTTP_URL = HttpUrlType()


ACCOUNT_ID = re.compile(r"[0-9]{12}")


class AccountIdType(click.ParamType):
    """An AWS account ID: exactly twelve ASCII digits."""

    name = "ACCOUNT_ID"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text = str(value)
        if not ACCOUNT_ID.fullmatch(text):
            self.fail(f"{text!r} is not an AWS account ID: expected exactly 12 digits", param, ctx)
        return text


ACCOUNT_ID_TYPE = AccountIdType()

#: The connection statuses (SPEC "Statuses"), for --status; the service's own list is not
#: imported: the CLI is a package of its own.
STATUSES = (
    "PENDING_APPROVAL",
    "APPROVED",
    "VERIFIED",
    "DISCONNECTED",
    "REJECTED",
    "EXPIRED",
    "CANCELLED",
    "FAILED",
)
STATUS_TYPE = click.Choice(STATUSES, case_sensitive=False)


def paging_options(max_limit: int, default_limit: int) -> Any:
    """``--limit N``, ``--next-token T`` and ``--all``, the options of every list command."""

    def decorate(command: Any) -> Any:
        command = click.option(
            "--all",
            "every_page",
            is_flag=True,
            help="Follow the pages to the end (with --json: one array of every item).",
        )(command)
        command = click.option(
            "--next-token", metavar="TOKEN", help="Start at this page (the token a previous page gave)."
        )(command)
        command = click.option(
            "--limit",
            type=click.IntRange(1, max_limit),
            default=default_limit,
            show_default=True,
            help=f"Items per page, 1-{max_limit}.",
        )(command)
        return command

    return decorate
