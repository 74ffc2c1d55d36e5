"""The outbox: every SNS message that AWS would deliver to an email subscription.

moto's SNS accepts email subscriptions but delivers nothing to them. The outbox wraps moto's
``Subscription.publish`` and records a message for an email subscription exactly when moto's
own filter-policy matcher lets it through, so the filter policies the service sets (one per
administrator, on ``accountId``) decide who gets what, as in AWS.
"""

from __future__ import annotations

import html
import re
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

_EMAIL_PROTOCOLS = {"email", "email-json"}
_LINK = re.compile(r"https?://[^\s<>\"']+")


def _links(body: str) -> list[str]:
    """The links the service wrote: a quoted line (``> ``) is what a requester wrote, and a link
    there is no link of the service's, so the outbox neither lists it nor makes it clickable."""
    lines = (line for line in body.splitlines() if not line.startswith(">"))
    return [link.rstrip(".,;)") for line in lines for link in _LINK.findall(line)]


@dataclass(frozen=True)
class Email:
    to: str
    subject: str
    body: str
    links: list[str]
    sentAt: str

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


class Outbox:
    """The emails delivered so far, oldest first (thread-safe)."""

    def __init__(self) -> None:
        self._emails: list[Email] = []
        self._lock = threading.Lock()

    def record(self, to: str, subject: str | None, body: str) -> None:
        email = Email(
            to=to,
            subject=subject or "",
            body=body,
            links=_links(body),
            sentAt=datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        )
        with self._lock:
            self._emails.append(email)

    def emails(self) -> list[Email]:
        with self._lock:
            return list(self._emails)

    def as_json(self) -> list[dict[str, Any]]:
        return [email.as_json() for email in self.emails()]

    def as_html(self) -> str:
        """A page listing the emails, newest first, every text escaped and every link clickable."""
        items = []
        for email in reversed(self.emails()):
            body = html.escape(email.body)
            for link in sorted(set(email.links), key=len, reverse=True):
                escaped = html.escape(link)
                body = body.replace(escaped, f'<a href="{escaped}">{escaped}</a>')
            items.append(
                "<article>"
                f"<h2>{html.escape(email.subject) or '(no subject)'}</h2>"
                f"<p class=meta>To {html.escape(email.to)} at {html.escape(email.sentAt)}</p>"
                f"<pre>{body}</pre>"
                "</article>"
            )
        content = "\n".join(items) or "<p>No email has been sent yet.</p>"
        return (
            "<!doctype html><html lang=en><head><meta charset=utf-8>"
            "<title>Outbox: local stack</title>"
            "<style>body{font-family:system-ui,sans-serif;max-width:50rem;margin:2rem auto;padding:0 1rem}"
            "article{border:1px solid #ccc;border-radius:6px;padding:0 1rem;margin:1rem 0}"
            "pre{white-space:pre-wrap}.meta{color:#555}</style></head><body>"
            "<h1>Outbox</h1><p>Emails that SNS delivered to email subscriptions, newest first.</p>"
            f"{content}</body></html>"
        )

    def install(self) -> Callable[[], None]:
        """Start recording from moto's SNS; returns the function that stops it."""
        from moto.sns.models import Subscription

        original = Subscription.publish
        outbox = self

        def publish(
            subscription: Subscription, message: str, message_id: str, *args: Any, **kwargs: Any
        ) -> None:
            if subscription.protocol in _EMAIL_PROTOCOLS:
                outbox._deliver(subscription, message, *args, **kwargs)
            original(subscription, message, message_id, *args, **kwargs)

        Subscription.publish = publish  # type: ignore[method-assign,assignment]

        def uninstall() -> None:
            Subscription.publish = original  # type: ignore[method-assign]

        return uninstall

    def _deliver(
        self,
        subscription: Any,
        message: str,
        subject: str | None = None,
        message_attributes: dict[str, Any] | None = None,
        group_id: str | None = None,
        deduplication_id: str | None = None,
        message_structure: str | None = None,
    ) -> None:
        matcher = subscription._filter_policy_matcher
        if matcher is not None and not matcher.matches(message_attributes, message):
            return
        if message_structure == "json":
            message = subscription._parse_message_structure(message, subscription.protocol)
        self.record(subscription.endpoint, subject, message)
