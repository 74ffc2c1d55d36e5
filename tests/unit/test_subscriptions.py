"""The SNS adapter of the approver registry, against botocore's Stubber (no AWS)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from account_connections.adapters.sns import SnsSubscriptions as ApproverSubscriptions
from account_connections.domain.errors import RegistryConflict

TOPIC = "arn:aws:sns:us-east-1:123456789012:approvals"
ARN = f"{TOPIC}:0b7e1c8a-1111-2222-3333-444455556666"


@pytest.fixture
def stubbed() -> Iterator[tuple[ApproverSubscriptions, Stubber]]:
    sns = boto3.client("sns", region_name="us-east-1")
    with Stubber(sns) as stubber:
        yield ApproverSubscriptions(sns, TOPIC), stubber
        stubber.assert_no_pending_responses()


def test_subscribe_asks_for_the_arn_with_a_filter_that_lets_nothing_through(
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
            # The same attributes every time: SNS answers a second call with the same subscription.
            "Attributes": {
                "FilterPolicy": json.dumps({"accountId": ["none"], "recipients": ["admin@example.com"]}),
                "FilterPolicyScope": "MessageAttributes",
            },
            "ReturnSubscriptionArn": True,
        },
    )
    assert adapter.subscribe("admin@example.com") == ARN


def test_a_subscription_whose_filter_was_set_meanwhile_is_a_lost_race(
    stubbed: tuple[ApproverSubscriptions, Stubber],
) -> None:
    adapter, stubber = stubbed
    stubber.add_client_error(
        "subscribe",
        service_error_code="InvalidParameter",
        service_message="Invalid parameter: Attributes Reason: Subscription already exists with "
        "different attributes",
        http_status_code=400,
    )
    with pytest.raises(RegistryConflict):
        adapter.subscribe("admin@example.com")


def test_an_invalid_address_is_not_a_race(stubbed: tuple[ApproverSubscriptions, Stubber]) -> None:
    adapter, stubber = stubbed
    stubber.add_client_error(
        "subscribe",
        service_error_code="InvalidParameter",
        service_message="Invalid parameter: Email address",
        http_status_code=400,
    )
    with pytest.raises(ClientError):
        adapter.subscribe("admin@example.com")


@pytest.mark.parametrize("answer", ["pending confirmation", "PendingConfirmation"])
def test_a_pending_confirmation_answer_is_no_arn(
    stubbed: tuple[ApproverSubscriptions, Stubber], answer: str
) -> None:
    adapter, stubber = stubbed
    stubber.add_response("subscribe", {"SubscriptionArn": answer})
    assert adapter.subscribe("admin@example.com") is None


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
            "AttributeValue": '{"accountId": ["111122223333"], "recipients": ["admin@example.com"]}',
        },
    )
    assert adapter.set_accounts(ARN, "admin@example.com", ["111122223333"]) is True


def test_set_accounts_of_a_subscription_removed_meanwhile_says_so(
    stubbed: tuple[ApproverSubscriptions, Stubber],
) -> None:
    adapter, stubber = stubbed
    stubber.add_client_error(
        "set_subscription_attributes", service_error_code="NotFound", http_status_code=404
    )
    assert adapter.set_accounts(ARN, "admin@example.com", ["111122223333"]) is False


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
