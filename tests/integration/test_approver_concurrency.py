"""Operators changing the registry at the same moment, against moto from threads: one address
registered for two accounts, two policies registered for one account, and a crowd of accounts
given to one address. The use case runs over the DynamoDB and SNS adapters, as the operators'
route calls it (a Lambda serves one request at a time, so the HTTP handler is not shared by
threads). The registration and each address's record (``SUBSCRIPTION#<email>``) are written on
condition that they did not change since read, so the registration that loses pauses and reads
again, and each address's one SNS subscription ends with a filter policy listing exactly the
accounts whose policies name it."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

import pytest
from moto.sns.models import SNSBackend

from account_connections import wiring
from account_connections.adapters.dynamodb.registry import DynamoRegistry
from account_connections.domain.access import Principal
from account_connections.domain.audit import EventType
from account_connections.domain.registry import Approver, PutApproverRequest
from account_connections.logic import backoff
from account_connections.logic.registry import put_approver
from account_connections.ports import EventQuery
from account_connections.snapstart import build_models
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


def _at_once(
    requests: dict[str, tuple[str, PutApproverRequest]], start: threading.Barrier | None = None
) -> dict[str, Approver | Exception]:
    """Each named registration (an account and its policy, by operator ``oscar-<name>``) from a
    thread of its own, all at once (after ``start``, if given); what each answered or raised."""
    wiring.reset()
    registry, sns = wiring.registry(), wiring.subscriptions()
    connections, mailer = wiring.connections(), wiring.mailer()
    # Every model built first, as a function's init does (``snapstart.warm``): a deferred build
    # that threads start at the same moment is not safe (pydantic), and a Lambda never does that.
    build_models()
    replies: dict[str, Approver | Exception] = {}

    def register(name: str) -> None:
        operator = Principal(sub=f"oscar-{name}", groups=frozenset({"operators"}))
        account, request = requests[name]
        if start is not None:
            start.wait()
        try:
            replies[name] = put_approver(registry, sns, connections, mailer, operator, account, request)
        except Exception as exc:  # reported by the callers' assertions
            replies[name] = exc

    threads = [threading.Thread(target=register, args=(name,)) for name in requests]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return replies


def test_two_concurrent_registrations_of_one_address_end_with_both_accounts(
    aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # DynamoDB runs each transaction atomically; moto needs the local stack's fix for that.
    dynamodb_transactions.install()
    _both_read_first(monkeypatch)
    # When two operators register admin@ for two accounts at once
    replies = _at_once({account: (account, PutApproverRequest(email=EMAIL)) for account in ACCOUNTS})
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
    account = ACCOUNTS[0]
    policies = {
        "first": PutApproverRequest(approvers=["a@example.com", "b@example.com"], quorum=2),
        "second": PutApproverRequest(
            approvers=["b@example.com", "c@example.com"],
            escalateAfterSeconds=600,
            escalateTo=["d@example.com"],
        ),  # fmt: skip
    }
    # When two operators register two policies for one account at once
    replies = _at_once({name: (account, request) for name, request in policies.items()})
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


CROWD = 25


def _subscribe_atomically(monkeypatch: pytest.MonkeyPatch) -> None:
    """SNS answers a second Subscribe of the same endpoint, concurrent or later, with the same
    subscription; moto looks for it, then makes one, unlocked, so that threads subscribing at the
    same moment may each make one. Locked here, as SNS is."""
    lock = threading.Lock()
    original: Callable[..., Any] = SNSBackend.subscribe

    def subscribe(self: SNSBackend, *args: Any, **kwargs: Any) -> Any:
        with lock:
            return original(self, *args, **kwargs)

    monkeypatch.setattr(SNSBackend, "subscribe", subscribe)


def test_a_crowd_of_registrations_of_one_address_all_succeed(
    aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """As the benchmark's set-up does: many operators at once give each their own account to one
    address, all contending on its record. Each lost race pauses (``logic.backoff``) and tries
    again, so the contention settles and none answers 409."""
    dynamodb_transactions.install()
    _subscribe_atomically(monkeypatch)
    accounts = [f"{100000000000 + n:012d}" for n in range(CROWD)]
    slept: list[float] = []
    sleep = backoff.sleep

    def counted(seconds: float) -> None:
        slept.append(seconds)
        sleep(seconds)

    monkeypatch.setattr(backoff, "sleep", counted)
    # When CROWD operators register admin@ for CROWD accounts at once
    requests = {account: (account, PutApproverRequest(email=EMAIL)) for account in accounts}
    replies = _at_once(requests, start=threading.Barrier(CROWD, timeout=30))
    # Then every one succeeds (the route's 200), none a 409
    failed = {account: reply for account, reply in replies.items() if not isinstance(reply, Approver)}
    assert len(replies) == CROWD and not failed, (failed, len(slept))
    # And the races were real: some lost, paused and tried again
    assert slept
    # And the address's record names every account exactly once, as its one filter policy does
    record = stores(aws["table"], aws["ddb"]).registry.get_subscription(EMAIL)
    assert record is not None and record.accounts == sorted(accounts)
    [subscription] = subscriptions(aws)
    assert json.loads(subscription["FilterPolicy"]) == {"accountId": sorted(accounts), "recipients": [EMAIL]}
    assert record.subscriptionArn == subscription["SubscriptionArn"]
    # And each registration is recorded once
    audit = stores(aws["table"], aws["ddb"]).audit
    for account in accounts:
        [event] = audit.query_events(EventQuery(actor=f"oscar-{account}"), 10, None).items
        assert (event.type, event.accountId) == (EventType.APPROVER_CHANGED, account)
