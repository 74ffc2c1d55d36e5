"""The SNS adapters of the approval topic: approval emails to an account's administrator, and the
administrators' email subscriptions, one per address, filtered so that only the messages about
the accounts they administer reach them.

Every email is published with the message attributes ``accountId`` and ``recipients`` (a
``String.Array`` of the addresses it is for); each address's subscription has a filter policy
(scope ``MessageAttributes``) that matches the accounts the address serves *and* the address
itself, so that a link made for one approver reaches that approver only.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from account_connections.adapters.retry import is_transient
from account_connections.domain.errors import DependencyUnavailable, RegistryConflict
from account_connections.observability import logger

# What SNS answers in place of an ARN while the address has not confirmed the subscription.
_PENDING = {"pending confirmation", "pendingconfirmation"}


# No account id is this value (they are twelve digits): a filter on it lets no message through,
# as an address's subscription does between its making and its first ``set_accounts``.
NO_ACCOUNT = "none"


def filter_policy(email: str, account_ids: list[str]) -> str:
    """The messages ``email`` receives: those of the accounts it serves that name it a recipient."""
    return json.dumps({"accountId": sorted(account_ids) or [NO_ACCOUNT], "recipients": [email]})


class SnsMailer:
    """The ``Mailer``: publishes plain-text approval emails on the approval topic."""

    def __init__(self, sns: Any, topic_arn: str) -> None:
        self.sns = sns
        self.topic_arn = topic_arn

    def send(self, account_id: str, recipients: list[str], subject: str, body: str) -> str:
        """Publish ``body`` to ``recipients`` among ``account_id``'s approvers; returns the SNS
        message id.

        Raises ``DependencyUnavailable`` when SNS fails transiently (the workflow retries).
        """
        try:
            response = self._publish(account_id, recipients, subject, body)
        except (ClientError, BotoCoreError) as exc:
            if is_transient(exc):
                raise DependencyUnavailable("the approval email could not be sent yet") from exc
            raise
        return str(response["MessageId"])

    def _publish(self, account_id: str, recipients: list[str], subject: str, body: str) -> Any:
        to = json.dumps(sorted(set(recipients)))
        return self.sns.publish(
            TopicArn=self.topic_arn,
            Subject=subject,
            Message=body,
            MessageAttributes={
                "accountId": {"DataType": "String", "StringValue": account_id},
                "recipients": {"DataType": "String.Array", "StringValue": to},
                "kind": {"DataType": "String", "StringValue": "approval-request"},
            },
        )


class SnsSubscriptions:
    """Email subscriptions to the approval topic, given an SNS client and the topic's ARN.

    SNS keeps one subscription per address and topic, so an administrator of several accounts
    has one subscription whose filter policy lists all of them (at most 150: SNS's limit).
    """

    def __init__(self, sns: Any, topic_arn: str) -> None:
        self.sns = sns
        self.topic_arn = topic_arn

    def subscribe(self, email: str) -> str | None:
        """Subscribe ``email`` with a filter that lets no message through (``set_accounts`` opens
        it); SNS emails it a confirmation link. The same attributes every time, so that SNS answers
        a second call, concurrent or later, with the same subscription. Returns its ARN, or None
        while SNS withholds it. Raises ``RegistryConflict`` when SNS refuses because the address's
        subscription already has another filter: another operator made it and set its accounts,
        so its ARN is stored by now (read the registry again)."""
        try:
            response = self.sns.subscribe(
                TopicArn=self.topic_arn,
                Protocol="email",
                Endpoint=email,
                Attributes={
                    "FilterPolicy": filter_policy(email, []),
                    "FilterPolicyScope": "MessageAttributes",
                },
                # Without this SNS answers "pending confirmation" and the subscription could not be
                # changed or removed until the address confirms it.
                ReturnSubscriptionArn=True,
            )
        except ClientError as exc:
            error = exc.response["Error"]
            # SNS has no code of its own for it: InvalidParameter, "already exists with different attributes".
            if error["Code"] in ("InvalidParameter", "InvalidParameterException") and "already exists" in str(
                error.get("Message", "")
            ):
                raise RegistryConflict("the address's subscription was changed meanwhile") from exc
            raise
        arn = response.get("SubscriptionArn")
        return None if not arn or arn.lower() in _PENDING else str(arn)

    def set_accounts(self, subscription_arn: str, email: str, account_ids: list[str]) -> bool:
        """Change which accounts' messages the subscription of ``email`` receives. Returns False when the
        subscription is gone (removed meanwhile); other SNS errors propagate."""
        try:
            self.sns.set_subscription_attributes(
                SubscriptionArn=subscription_arn,
                AttributeName="FilterPolicy",
                AttributeValue=filter_policy(email, account_ids),
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("NotFound", "NotFoundException"):
                return False
            raise
        return True

    def unsubscribe(self, subscription_arn: str | None) -> bool:
        """Remove the subscription. Returns False when there was nothing SNS could remove: no ARN
        was ever known, the subscription is already gone, or SNS refuses to remove one still
        pending confirmation. Other SNS errors propagate."""
        if not subscription_arn or subscription_arn.lower() in _PENDING:
            logger.warning("approver subscription has no ARN; it lapses unconfirmed after three days")
            return False
        try:
            self.sns.unsubscribe(SubscriptionArn=subscription_arn)
        except ClientError as exc:
            code = exc.response["Error"]["Code"]
            if code in ("NotFound", "NotFoundException"):
                logger.info(
                    "approver subscription already gone", extra={"subscription_arn": subscription_arn}
                )
                return False
            if code in ("InvalidParameter", "InvalidParameterException") and self._pending(subscription_arn):
                # SNS may refuse to remove a subscription nobody confirmed; unconfirmed, it lapses.
                logger.warning("approver subscription still pending; it lapses unconfirmed after three days")
                return False
            raise
        return True

    def _pending(self, subscription_arn: str) -> bool:
        try:
            attributes = self.sns.get_subscription_attributes(SubscriptionArn=subscription_arn)["Attributes"]
        except ClientError:
            return False
        return str(attributes.get("PendingConfirmation", "false")).lower() == "true"
