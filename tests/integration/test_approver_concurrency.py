"""Two operators changing the registry at the same moment, against moto from two threads: one
address registered for two accounts, and two policies registered for one account. The use case
runs over the DynamoDB and SNS adapters, as the operators' route calls it (a Lambda serves one
request at a time, so the HTTP handler is not shared by threads). The registration and each
address's record (``SUBSCRIPTION#<email>``) are written on condition that they did not change since
read, so the registration that loses reads again, and each address's one SNS subscription ends
with a filter policy listing exactly the accounts whose policies name it."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

import pytest

from account_connections import wiring
from account_connections.adapters.dynamodb.registry import DynamoRegistry
from account_connections.domain.access import Principal
from account_connections.domain.audit import EventType
from account_connections.domain.registry import Approver, PutApproverRequest
from account_connections.logic.registry import put_approver
from account_connections.ports import EventQuery
from local import dynamodb_transactions
from tests.integration.test_operator_api import subscriptions
from tests.support import stores

ACCOUNTS = ("111122223333", "444455556666")
EMAIL = "admin@example.com"


def _both_read_first(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each registration waits, right after it first reads the address's approvers, until the
    other has read them too: both then act on a registry that names neither account."""
    barrier = threading.Barrier(2, timeout=10)
    waited: set[int] = set()
    original: Callable[..., Any] = DynamoRegistry.approvers_with_email

    def read_then_wait(self: DynamoRegistry, email: str) -> Any:
        seen = original(self, email)
        if threading.get_ident() not in waited:
            waited.add(threading.get_ident())
            barrier.wait()
        return seen

    monkeypatch.setattr(DynamoRegistry, "approvers_with_email", read_then_wait)


def test_two_concurrent_registrations_of_one_address_end_with_both_accounts(
    aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # DynamoDB runs each transaction atomically; moto needs the local stack's fix for that.
    dynamodb_transactions.install()
    _both_read_first(monkeypatch)
    wiring.reset()
    registry, sns = wiring.registry(), wiring.subscriptions()
    connections, mailer = wiring.connections(), wiring.mailer()
    replies: dict[str, Approver | Exception] = {}

    def register(account: str) -> None:
        operator = Principal(sub=f"oscar-{account}", groups=frozenset({"operators"}))
        try:
            request = PutApproverRequest(email=EMAIL)
            replies[account] = put_approver(registry, sns, connections, mailer, operator, account, request)
        except Exception as exc:  # reported by the assertion below
            replies[account] = exc

    # When two operators register admin@ for two accounts at once
    threads = [threading.Thread(target=register, args=(account,)) for account in ACCOUNTS]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    # Then both succeed, and the address's one subscription receives both accounts' messages
    assert all(isinstance(reply, Approver) for reply in replies.values()) and len(replies) == 2, replies
    [subscription] = subscriptions(aws)
    assert json.loads(subscription["FilterPolicy"]) == {"accountId": list(ACCOUNTS), "recipients": [EMAIL]}
    record = stores(aws["table"], aws["ddb"]).registry.get_subscription(EMAIL)
    assert record is not None and record.accounts == list(ACCOUNTS)
    assert record.subscriptionArn == subscription["SubscriptionArn"]
    assert {getattr(reply, "subscriptionArn", None) for reply in replies.values()} == {
        subscription["SubscriptionArn"]
    }


def test_two_concurrent_policies_of_one_account_end_with_one_of_them_whole(
    aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    dynamodb_transactions.install()
    _both_read_first(monkeypatch)
    wiring.reset()
    registry, sns = wiring.registry(), wiring.subscriptions()
    connections, mailer = wiring.connections(), wiring.mailer()
    account = ACCOUNTS[0]
    policies = {
        "first": PutApproverRequest(approvers=["a@example.com", "b@example.com"], quorum=2),
        "second": PutApproverRequest(
            approvers=["b@example.com", "c@example.com"],
            escalateAfterSeconds=600,
            escalateTo=["d@example.com"],
        ),  # fmt: skip
    }
    replies: dict[str, Approver | Exception] = {}

    def register(name: str) -> None:
        operator = Principal(sub=f"oscar-{name}", groups=frozenset({"operators"}))
        try:
            request = policies[name]
            replies[name] = put_approver(registry, sns, connections, mailer, operator, account, request)
        except Exception as exc:  # reported by the assertion below
            replies[name] = exc

    # When two operators register two policies for one account at once
    threads = [threading.Thread(target=register, args=(name,)) for name in policies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    # Then both succeed: the one that lost read again and replaced the other's
    assert all(isinstance(reply, Approver) for reply in replies.values()) and len(replies) == 2, replies
    final = stores(aws["table"], aws["ddb"]).registry.get_approver(account)
    assert final is not None
    assert final.policy() in [request.policy() for request in policies.values()]
    # And exactly the final policy's addresses receive the account's messages, each its own only
    filters = {s["Endpoint"]: json.loads(s["FilterPolicy"]) for s in subscriptions(aws)}
    expected = {address: {"accountId": [account], "recipients": [address]} for address in final.addresses()}
    assert filters == expected
    records = stores(aws["table"], aws["ddb"]).registry
    for address in ("a@example.com", "b@example.com", "c@example.com", "d@example.com"):
        record = records.get_subscription(address)
        if address in final.addresses():
            assert record is not None and record.accounts == [account]
            [subscription] = [s for s in subscriptions(aws) if s["Endpoint"] == address]
            assert record.subscriptionArn == subscription["SubscriptionArn"]
        else:
            assert record is None or record.accounts == [], (address, record)
    # And each change is recorded once, the last one the final policy's
    audit = stores(aws["table"], aws["ddb"]).audit
    events = [event for name in policies
              for event in audit.query_events(EventQuery(actor=f"oscar-{name}"), 10, None).items]  # fmt: skip
    assert sorted(event.type for event in events) == [EventType.APPROVER_CHANGED] * 2
    assert max(events, key=lambda event: event.at).detail == final.policy().describe()
