"""The local stack's fix for moto's action lookup (``local.moto_actions``): a response class's
methods are listed once, not for every request, and requests still reach their methods."""

from __future__ import annotations

import inspect
from typing import Any

import boto3
import pytest
from moto import mock_aws

from local import moto_actions
from tests.local_stack.tables import table_on_pk

REQUESTS = 20


def test_a_classes_methods_are_listed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    moto_actions.install()
    listed = 0
    getmembers = inspect.getmembers

    def counted(*args: Any, **kwargs: Any) -> Any:
        nonlocal listed
        listed += 1
        return getmembers(*args, **kwargs)

    with mock_aws():
        ddb = table_on_pk("actions")
        sns = boto3.client("sns", region_name="us-east-1")
        sns.list_topics()  # each response class seen once
        monkeypatch.setattr(inspect, "getmembers", counted)
        for n in range(REQUESTS):
            ddb.put_item(TableName="actions", Item={"pk": {"S": str(n)}})
            sns.create_topic(Name=f"topic-{n}")
        assert listed == 0  # moto lists the class's members for every request
        assert ddb.scan(TableName="actions")["Count"] == REQUESTS
        assert len(sns.list_topics()["Topics"]) == REQUESTS
