"""A small HTTP client for the running local stack: the e2e tests use nothing else."""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from email.message import Message
from typing import Any, TypeVar

from local.seed_data import OPERATOR, REQUESTER
from tests.support import ROOT

T = TypeVar("T")


@dataclass
class Response:
    status: int
    headers: Message
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.body)


class StackClient:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")

    def request(
        self,
        method: str,
        path_or_url: str,
        *,
        user: str | None = None,
        json_body: Any = None,
        form: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        url = path_or_url if path_or_url.startswith("http") else f"{self.base_url}{path_or_url}"
        sent = dict(headers or {})
        data = None
        if json_body is not None:
            data = json.dumps(json_body).encode()
            sent.setdefault("Content-Type", "application/json")
        elif form is not None:
            data = urllib.parse.urlencode(form).encode()
            sent.setdefault("Content-Type", "application/x-www-form-urlencoded")
        if user is not None:
            sent["Authorization"] = f"Bearer {self.token(user)}"
        request = urllib.request.Request(url, data=data, method=method, headers=sent)
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return Response(response.status, response.headers, response.read())
        except urllib.error.HTTPError as exc:
            return Response(exc.code, exc.headers, exc.read())

    def token(self, user: str) -> str:
        response = self.request("GET", f"/_local/token?sub={urllib.parse.quote(user)}")
        assert response.status == 200, response.text
        return str(response.json()["token"])

    def outbox(self) -> list[dict[str, Any]]:
        response = self.request("GET", "/_local/outbox")
        assert response.status == 200, response.text
        return list(response.json())

    def new_space(self, members: dict[str, str]) -> str:
        """A space of its own for one test (one live connection per account per space), made
        by the seeded operator through the operator API."""
        space_id = f"e2e-{uuid.uuid4().hex[:12]}"
        response = self.request("PUT", f"/spaces/{space_id}", user=OPERATOR, json_body={"name": space_id})
        assert response.status in (200, 201), response.text
        for user, role in members.items():
            path = f"/spaces/{space_id}/members/{user}"
            response = self.request("PUT", path, user=OPERATOR, json_body={"role": role})
            assert response.status in (200, 201), response.text
        return space_id

    def create_connection(self, user: str, space_id: str, account_id: str, **fields: Any) -> Response:
        body = {"accountId": account_id, "displayName": fields.pop("displayName", "Production"), **fields}
        return self.request("POST", f"/spaces/{space_id}/connections", user=user, json_body=body)

    def connection(self, space_id: str, connection_id: str, user: str = REQUESTER) -> dict[str, Any]:
        response = self.request("GET", f"/spaces/{space_id}/connections/{connection_id}", user=user)
        assert response.status == 200, response.text
        return dict(response.json())

    def email_about(self, marker: str, timeout: float = 30) -> dict[str, Any]:
        """The approval email whose text contains ``marker`` (a unique display name), once sent."""

        def find() -> dict[str, Any] | None:
            return next((email for email in reversed(self.outbox()) if marker in email["body"]), None)

        return wait_for(find, timeout, f"no email mentions {marker!r}")

    def wait_for_status(
        self, space_id: str, connection_id: str, status: str, timeout: float = 30, user: str = REQUESTER
    ) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            connection = self.connection(space_id, connection_id, user)
            return connection if connection["status"] == status else None

        return wait_for(reached, timeout, f"connection {connection_id} never became {status}")


def wait_for(probe: Callable[[], T | None], timeout: float, message: str, interval: float = 0.3) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value is not None:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(message)
        time.sleep(interval)


def readme_block(heading: str, index: int = 0) -> str:
    """The ``index``-th ``sh`` block of the README's walkthrough step that starts with ``heading``."""
    text = (ROOT / "README.md").read_text()
    start = text.index(heading)
    following = text[start:]
    end = re.search(r"\n\*\*\d+b?\. ", following[len(heading) :])
    section = following[: len(heading) + end.start()] if end else following
    return re.findall(r"```sh\n(.*?)```", section, re.DOTALL)[index]
