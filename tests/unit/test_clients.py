"""The boto3 clients (account_connections.adapters.clients): a request's parameters are checked
by the service, not again by the client (botocore's ``parameter_validation`` is off: it cost
about a tenth of a warm create's CPU), for the process's clients and for assumed-role ones."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from botocore.compat import HTTPHeaders

from account_connections.adapters.clients import client, session_client

CREDENTIALS = {"AccessKeyId": "a", "SecretAccessKey": "s", "SessionToken": "t"}


class _Raw:
    def stream(self, **_: Any) -> Iterator[bytes]:
        yield b"{}"


def _sent(aws: Any) -> list[Any]:
    """Requests the client would send; each answered ``{}`` here, nothing leaves the process."""
    sent: list[Any] = []

    def answer(request: Any, **_: Any) -> AWSResponse:
        sent.append(request)
        return AWSResponse(request.url, 200, HTTPHeaders(), _Raw())

    aws.meta.events.register("before-send", answer)
    return sent


@pytest.fixture
def fresh_clients() -> Iterator[None]:
    client.cache_clear()
    yield
    client.cache_clear()


@pytest.mark.parametrize(
    "make", [lambda: client("dynamodb"), lambda: session_client("dynamodb", CREDENTIALS)]
)
def test_a_parameter_the_model_refuses_is_sent_for_the_service_to_judge(
    make: Any, fresh_clients: None
) -> None:
    aws = make()
    sent = _sent(aws)
    # A key value of the wrong type: botocore's validation would raise ParamValidationError.
    aws.get_item(TableName="t", Key={"pk": {"S": 1}})
    assert len(sent) == 1
    assert b'"S": 1' in sent[0].body


def test_the_clients_keep_their_retries_and_timeouts(fresh_clients: None) -> None:
    config = client("dynamodb").meta.config
    assert (config.retries["mode"], config.retries["total_max_attempts"]) == ("standard", 4)
    assert (config.connect_timeout, config.read_timeout) == (3, 10)
