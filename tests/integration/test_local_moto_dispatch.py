"""The local stack's fix for moto's dispatcher (``local.moto_dispatch``): moto's server finds
a request's service without listing its own package folder for every request."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.test import Client

from local import moto_dispatch

REQUESTS = 50


def _list_tables(client: Client) -> Any:
    return client.post(
        "/",
        data="{}",
        headers={
            "Authorization": "AWS4-HMAC-SHA256 "
            "Credential=local-stack/20260101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, "
            "Signature=0",
            "X-Amz-Target": "DynamoDB_20120810.ListTables",
            "Content-Type": "application/x-amz-json-1.0",
        },
    )


def test_requests_are_dispatched_without_listing_moto_s_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given moto's server application with the fix, warm (its first request loads what it loads
    # once: botocore's service models, the names of moto's modules), and os.listdir counted
    moto_dispatch.install()
    client = Client(DomainDispatcherApplication(create_backend_app))
    assert _list_tables(client).status_code == 200
    listed: list[str] = []
    listdir = os.listdir

    def counting_listdir(path: Any = ".") -> list[str]:
        listed.append(str(path))
        return listdir(path)

    monkeypatch.setattr(os, "listdir", counting_listdir)
    # When many requests are dispatched
    answers = [_list_tables(client) for _ in range(REQUESTS)]
    # Then each was answered by DynamoDB, and moto's folder was never listed again
    assert [answer.status_code for answer in answers] == [200] * REQUESTS
    assert "TableNames" in json.loads(answers[-1].get_data())
    moto_folder = os.path.dirname(moto_dispatch.backends.__file__)
    assert listed.count(moto_folder) == 0


def test_the_cached_names_are_moto_s_modules() -> None:
    moto_dispatch.install()
    names = list(moto_dispatch.backends.list_of_moto_modules())
    assert names == list(moto_dispatch._original())
    assert {"dynamodb", "stepfunctions", "sns", "sts"} <= set(names)
