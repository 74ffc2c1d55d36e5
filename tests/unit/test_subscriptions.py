"""The SNS adapter of the approver registry, against botocore's Stubber (no AWS)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from account_connections.adapters.sns import SnsSubscriptions as ApproverSubscriptions

TOPIC = "arn:aws:sns:us-east-1:123456789012:approvals"
ARN = f"{TOPIC}:0b7e1c8a-1111-2222-3333-444455556666"


@pytest.fixture
def stubbed() -> Iterator[tuple[ApproverSubscriptions, Stubber]]:
    sns = boto3.client("sns", region_name="us-east-1")
    with Stubber(sns) as stubber:
        yield ApproverSubscriptions(sns, TOPIC), stubber
        stubber.assert_no_pending_responses()


def test_subscribe_asks_for_the_arn_and_filters_on_the_accounts(
    stubbed: tuple[ApproverSubscriptions, Stubber],
) -> None:
    adapter, stubber = stubbed
    stubber.add_response(
        "subscribe",
        {"SubscriptionArn": ARN},
        {
            "TopicArn": TOPIC,
            "Protocol": "email",
            "Endpoint": "admin@example.com",
            "Attributes": {
                "FilterPolicy": json.dumps({"accountId": ["111122223333", "444455556666"]}),
                "FilterPolicyScope": "MessageAttributes",
            },
            "ReturnSubscriptionArn": True,
        },
    )
    assert adapter.subscribe("admin@example.com", ["444455556666", "111122223333"]) == ARN


@pytest.mark.parametrize("answer", ["pending confirmation", "PendingConfirmation"])
def test_a_pending_confirmation_answer_is_no_arn(
    stubbed: tuple[ApproverSubscriptions, Stubber], answer: str
) -> None:
    adapter, stubber = stubbed
    stubber.add_response("subscribe", {"SubscriptionArn": answer})
    assert adapter.subscribe("admin@example.com", ["111122223333"]) is None


@pytest.mark.parametrize("arn", [None, "", "PendingConfirmation", "pending confirmation"])
def test_unsubscribe_without_an_arn_calls_nothing(
    stubbed: tuple[ApproverSubscriptions, Stubber], arn: str | None
) -> None:
    adapter, _ = stubbed
    assert adapter.unsubscribe(arn) is False  # the Stubber fails on any call it was not given


def test_unsubscribe_removes_the_subscription(stubbed: tuple[ApproverSubscriptions, Stubber]) -> None:
    adapter, stubber = stubbed
    stubber.add_response("unsubscribe", {}, {"SubscriptionArn": ARN})
    assert adapter.unsubscribe(ARN) is True


def test_a_subscription_already_gone_is_not_an_error(stubbed: tuple[ApproverSubscriptions, Stubber]) -> None:
    adapter, stubber = stubbed
    stubber.add_client_error("unsubscribe", service_error_code="NotFound", http_status_code=404)
    assert adapter.unsubscribe(ARN) is False


def test_other_sns_errors_propagate(stubbed: tuple[ApproverSubscriptions, Stubber]) -> None:
    adapter, stubber = stubbed
    stubber.add_client_error("unsubscribe", service_error_code="Throttled", http_status_code=400)
    with pytest.raises(ClientError):
        adapter.unsubscribe(ARN)


def test_set_accounts_rewrites_the_filter_policy(stubbed: tuple[ApproverSubscriptions, Stubber]) -> None:
    adapter, stubber = stubbed
    stubber.add_response(
        "set_subscription_attributes",
        {},
        {
            "SubscriptionArn": ARN,
            "AttributeName": "FilterPolicy",
            "AttributeValue": '{"accountId": ["111122223333"]}',
        },
    )
    adapter.set_accounts(ARN, ["111122223333"])


def test_a_pending_subscription_that_sns_will_not_remove_is_left_to_lapse(
    stubbed: tuple[ApproverSubscriptions, Stubber],
) -> None:
    adapter, stubber = stubbed
    stubber.add_client_error("unsubscribe", service_error_code="InvalidParameter", http_status_code=400)
    stubber.add_response(
        "get_subscription_attributes",
        {"Attributes": {"PendingConfirmation": "true"}},
        {"SubscriptionArn": ARN},
    )
    assert adapter.unsubscribe(ARN) is False


def test_an_invalid_parameter_for_a_confirmed_subscription_propagates(
    stubbed: tuple[ApproverSubscriptions, Stubber],
) -> None:
    adapter, stubber = stubbed
    stubber.add_client_error("unsubscribe", service_error_code="InvalidParameter", http_status_code=400)
    stubber.add_response("get_subscription_attributes", {"Attributes": {"PendingConfirmation": "false"}})
    with pytest.raises(ClientError):
        adapter.unsubscribe(ARN)
