"""boto3 clients, created once per process on first use.

The endpoint comes from boto3's own configuration (``AWS_ENDPOINT_URL``), which is how the
local stack points every handler at moto without a line of special code here.

Adapters get a ``LazyClient``: the client is made on the adapter's first call, not when the
adapter is built, so a cold start makes only the clients its event calls (making one loads its
service's models: 15 to 25 ms each), and after ``client.cache_clear()`` (a SnapStart restore)
the next call makes a new one.

Parameter validation is off (botocore's documented ``parameter_validation=False``): the service
checks every request anyway, and the client-side check walked each request's parameters against
the model on every call, about a tenth of a warm create's CPU. A malformed request is still
refused, by the service (a ``ClientError``), rather than by botocore (``ParamValidationError``).
"""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3
from botocore.config import Config

from account_connections.startup import loading

_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 3},
    connect_timeout=3,
    read_timeout=10,
    parameter_validation=False,
)


@cache
def client(service: str) -> Any:
    # Loading: the first client of a service reads its SDK models (tens of thousands of objects
    # that live as long as the process), with the collector held, then frozen with the rest of
    # what was loaded (account_connections.startup).
    with loading():
        # The service is a plain string here, so boto3-stubs cannot pick an overload.
        return boto3.client(service, config=_CONFIG)  # type: ignore[call-overload]


class LazyClient:
    """Stands for ``client(service)``: each attribute is the process's client's, made on first use."""

    def __init__(self, service: str) -> None:
        self.service = service

    def __getattr__(self, name: str) -> Any:
        return getattr(client(self.service), name)

    def __repr__(self) -> str:
        return f"LazyClient({self.service!r})"


def session_client(service: str, credentials: dict[str, str]) -> Any:
    """A client acting with temporary credentials (an assumed role): never cached."""
    return boto3.client(  # type: ignore[call-overload]
        service,
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        config=_CONFIG,
    )
