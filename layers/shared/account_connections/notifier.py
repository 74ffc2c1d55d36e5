"""The SNS adapter: approval emails to the account's administrator.

Each administrator's email subscription has a filter policy on ``accountId``; publishing with
that message attribute is what makes the email reach only that account's administrator.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from account_connections.errors import DependencyUnavailable
from account_connections.retry import is_transient


class ApprovalMailer:
    """Publishes plain-text approval emails on the approval topic."""

    def __init__(self, sns: Any, topic_arn: str) -> None:
        self.sns = sns
        self.topic_arn = topic_arn

    def send(self, account_id: str, subject: str, body: str) -> str:
        """Publish ``body`` for ``account_id``'s administrator; returns the SNS message id.

        Raises ``DependencyUnavailable`` when SNS fails transiently (the workflow retries).
        """
        try:
            response = self._publish(account_id, subject, body)
        except (ClientError, BotoCoreError) as exc:
            if is_transient(exc):
                raise DependencyUnavailable("the approval email could not be sent yet") from exc
            raise
        return str(response["MessageId"])

    def _publish(self, account_id: str, subject: str, body: str) -> Any:
        return self.sns.publish(
            TopicArn=self.topic_arn,
            Subject=subject,
            Message=body,
            MessageAttributes={
                "accountId": {"DataType": "String", "StringValue": account_id},
                "kind": {"DataType": "String", "StringValue": "approval-request"},
            },
        )
