"""The service's limits (SPEC.md, "Input rules" and "Approval links"), in one place: the API refuses
past them, the stores' conditional writes enforce them, and the approval policy's reminders reuse
the links' limit."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import NamedTuple

from account_connections.domain.errors import TooManyLinks, TooManyRoles

# Roles: at most this many in a request's roleArns, and recorded on a connection at any time
# (attached or refused: both are stored).
MAX_ROLES = 10
# Links of one request: at most this many in all (the first one included), one a minute at most.
MAX_LINKS = 10
LINK_INTERVAL = timedelta(minutes=1)
# A connection's history comes in pages of at most this many events (the default page too).
MAX_HISTORY_PAGE = 100


class LinkLimit(NamedTuple):
    """What a new link must pass unless it is the request's first: fewer than ``max_links`` links so
    far, the last one at least ``interval`` before it."""

    max_links: int = MAX_LINKS
    interval: timedelta = LINK_INTERVAL

    def refusal(self, links_sent: int, last_sent_at: datetime | None, at: datetime) -> TooManyLinks | None:
        """Why a link at ``at`` is refused after ``links_sent`` links, the last at ``last_sent_at``
        (None: unknown), or None when it may go. The count wins over the minute: no ``retry_after``
        once every link is used."""
        if links_sent >= self.max_links:
            return TooManyLinks(
                f"this request has had its {self.max_links} links: cancel it and request again",
                retry_after=None,
            )
        if last_sent_at is not None and at < last_sent_at + self.interval:
            wait = max(1, math.ceil((last_sent_at + self.interval - at).total_seconds()))
            return TooManyLinks(
                f"one new link a minute at most: try again in {wait} seconds", retry_after=wait
            )
        return None


def too_many_roles(role_name: str) -> TooManyRoles:
    """The refusal of a role that would be a connection's eleventh."""
    return TooManyRoles(
        f"a connection has at most {MAX_ROLES} roles, attached or refused: detach one before "
        f"attaching {role_name}"
    )
