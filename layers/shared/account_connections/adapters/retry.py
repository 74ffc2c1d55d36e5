"""Which AWS failures are worth retrying: the workflow retries ``DependencyUnavailable``."""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError

_TRANSIENT_CODES = frozenset({
    "Throttling", "ThrottlingException", "ThrottledException", "Throttled", "RequestLimitExceeded",
    "TooManyRequestsException", "ServiceUnavailable", "InternalFailure", "InternalError", "ServiceFailure",
})  # fmt: skip


def is_transient(exc: Exception) -> bool:
    """A connection failure, a throttle or a 5xx: the same call may well succeed later."""
    if isinstance(exc, BotoCoreError):
        return True
    if not isinstance(exc, ClientError):
        return False
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    return exc.response.get("Error", {}).get("Code") in _TRANSIENT_CODES or status >= 500
