"""The unit tier has no network: a unit test that opens a socket fails."""

from __future__ import annotations

import socket
import urllib.request

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import HTTPClientError
from pytest_socket import SocketBlockedError

pytestmark = pytest.mark.filterwarnings("ignore:A test tried to use socket")


def test_opening_a_socket_raises() -> None:
    with pytest.raises(SocketBlockedError):
        socket.socket(socket.AF_INET, socket.SOCK_STREAM)


def test_an_http_request_never_leaves_the_machine() -> None:
    with pytest.raises(SocketBlockedError):
        urllib.request.urlopen("http://127.0.0.1:9/", timeout=1)


def test_an_aws_call_that_reached_for_the_network_fails_at_once() -> None:
    # Credentials are the tests' fakes; without the block this would try to reach DynamoDB.
    ddb = boto3.client("dynamodb", region_name="us-east-1", config=Config(retries={"max_attempts": 1}))
    with pytest.raises(HTTPClientError) as caught:
        ddb.list_tables()
    assert isinstance(caught.value.kwargs["error"], SocketBlockedError)
