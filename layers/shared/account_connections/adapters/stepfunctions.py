"""The Step Functions adapter of the approval workflow: start an execution, answer or cancel its waiting task.

The task token is passed in and out of this module and nowhere else: it is never logged.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from account_connections.domain.errors import TaskAlreadyClosed

_CLOSED = {"TaskTimedOut", "TaskDoesNotExist", "InvalidToken", "ExecutionDoesNotExist"}


class StepFunctionsWorkflow:
    """The ``Workflow`` over Step Functions (the approval state machine)."""

    def __init__(self, stepfunctions: Any, state_machine_arn: str = "") -> None:
        self.sfn = stepfunctions
        self.state_machine_arn = state_machine_arn

    def start(self, connection_id: str, payload: dict[str, Any]) -> str:
        """Start the execution named after the connection. Starting it again with the same input
        is a no-op (execution names are idempotent), so a retried create cannot start two."""
        try:
            response = self.sfn.start_execution(
                stateMachineArn=self.state_machine_arn, name=connection_id, input=json.dumps(payload)
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ExecutionAlreadyExists":
                raise
            return f"{self.state_machine_arn.replace(':stateMachine:', ':execution:')}:{connection_id}"
        return str(response["executionArn"])

    def succeed(self, task_token: str, output: dict[str, Any]) -> None:
        """Raises ``TaskAlreadyClosed`` if the workflow no longer waits for this task."""
        self._send(self.sfn.send_task_success, taskToken=task_token, output=json.dumps(output))

    def fail(self, task_token: str, error: str, cause: str) -> None:
        """Raises ``TaskAlreadyClosed`` if the workflow no longer waits for this task."""
        self._send(self.sfn.send_task_failure, taskToken=task_token, error=error, cause=cause[:32000])

    @staticmethod
    def _send(call: Any, **kwargs: Any) -> None:
        try:
            call(**kwargs)
        except ClientError as exc:
            if exc.response["Error"]["Code"] in _CLOSED:
                raise TaskAlreadyClosed("the approval workflow is no longer waiting for a decision") from exc
            raise
