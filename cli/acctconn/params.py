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
