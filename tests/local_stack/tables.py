"""What the local stack's DynamoDB tests share: a table keyed on ``pk`` alone, in the moto around
them."""

from __future__ import annotations

from typing import Any

import boto3


def table_on_pk(name: str) -> Any:
    """A DynamoDB client, with table ``name`` (hash key ``pk``, a string) created."""
    ddb = boto3.client("dynamodb", region_name="us-east-1")
    ddb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return ddb
