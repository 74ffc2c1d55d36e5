"""boto3 clients, created once per process on first use.

The endpoint comes from boto3's own configuration (``AWS_ENDPOINT_URL``), which is how the
local stack points every handler at moto without a line of special code here.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3
from botocore.config import Config

_CONFIG = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=3, read_timeout=10)


@cache
def client(service: str) -> Any:
    # The service is a plain string here, so boto3-stubs cannot pick an overload.
    return boto3.client(service, config=_CONFIG)  # type: ignore[call-overload]


def session_client(service: str, credentials: dict[str, str]) -> Any:
    """A client acting with temporary credentials (an assumed role): never cached."""
    return boto3.client(  # type: ignore[call-overload]
        service,
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        config=_CONFIG,
    )
