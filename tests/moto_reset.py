"""One moto account serves every test of a folder (building it costs far more than a test);
these put back, between two tests, what a test may have changed in it, through the same APIs
the tests use: a new state table, a state machine without executions, the topics' subscriptions
as built, and no execution still running on moto's threads."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable
from typing import Any

from tests.support import table_definition


def fresh_table(ddb: Any, table_name: str) -> None:
    """The state table again, empty, from template.yaml's definition."""
    try:
        ddb.delete_table(TableName=table_name)
    except ddb.exceptions.ResourceNotFoundException:
        pass
    ddb.create_table(**table_definition(table_name))


def fresh_state_machine(sfn: Any, machine_arn: str) -> None:
    """The state machine again, with the same name, definition and role (so the same ARN), and no
    executions. Running executions must have ended first (``end_executions``)."""
    described = sfn.describe_state_machine(stateMachineArn=machine_arn)
    sfn.delete_state_machine(stateMachineArn=machine_arn)
    created = sfn.create_state_machine(
        name=described["name"], definition=described["definition"], roleArn=described["roleArn"]
    )
    assert created["stateMachineArn"] == machine_arn, created["stateMachineArn"]


def subscriptions(sns: Any, topic_arns: Iterable[str]) -> set[str]:
    return {
        subscription["SubscriptionArn"]
        for topic_arn in topic_arns
        for subscription in sns.list_subscriptions_by_topic(TopicArn=topic_arn)["Subscriptions"]
    }


def drop_subscriptions(sns: Any, topic_arns: Iterable[str], keep: set[str]) -> None:
    """Unsubscribe every subscription of the topics but those in ``keep`` (the ones built with
    the account): what the operator API subscribed during a test goes."""
    for subscription_arn in subscriptions(sns, topic_arns) - keep:
        sns.unsubscribe(SubscriptionArn=subscription_arn)


def end_executions(sfn: Any, machine_arn: str, timeout: float = 30) -> None:
    """Stop the machine's running executions and wait until none runs any more.

    moto runs an execution on background threads; one left running would go on invoking the
    steps (our handlers) and writing into the next test's table. An execution reads as ended
    once its program thread returned, which waits for the state it was in (and so for a step's
    handler) to return: after this, nothing of it runs our code."""
    deadline = time.monotonic() + timeout
    # moto logs the end of each execution stopped here as an error of its engine: it is none.
    engine_log = logging.getLogger("moto.stepfunctions.parser")
    level = engine_log.level
    engine_log.setLevel(logging.CRITICAL)
    try:
        while True:
            running = sfn.list_executions(stateMachineArn=machine_arn, statusFilter="RUNNING")["executions"]
            if not running:
                return
            if time.monotonic() > deadline:
                names = [execution["name"] for execution in running]
                raise AssertionError(f"executions still running {timeout:.0f} s after being stopped: {names}")
            for execution in running:
                _stop(sfn, execution["executionArn"])
            time.sleep(0.02)
    finally:
        engine_log.setLevel(level)


def _stop(sfn: Any, execution_arn: str) -> None:
    try:
        sfn.stop_execution(executionArn=execution_arn)
    except AttributeError:
        # moto cannot stop an execution whose worker has not set up its environment yet: the
        # next round stops it.
        return
    # moto's stop does not wake a state that waits for its task token (it would wait out its
    # timeout): answering the token does, and the stopped execution runs no further state.
    for token in _task_tokens(sfn, execution_arn):
        try:
            sfn.send_task_failure(taskToken=token, error="Stopped", cause="the test ended")
        except sfn.exceptions.ClientError:
            pass  # answered, timed out or gone already
        except AttributeError:
            # moto looks for the token in every execution, and fails on one that has not set up
            # its environment yet: the next round answers it again.
            return


def _task_tokens(sfn: Any, execution_arn: str) -> list[str]:
    """The task tokens the execution's scheduled tasks were given (their parameters carry them)."""
    tokens: list[str] = []

    def collect(value: Any) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                if key == "taskToken" and isinstance(inner, str):
                    tokens.append(inner)
                else:
                    collect(inner)
        elif isinstance(value, list):
            for inner in value:
                collect(inner)

    for event in sfn.get_execution_history(executionArn=execution_arn)["events"]:
        details = event.get("taskScheduledEventDetails")
        if details and details.get("parameters"):
            collect(json.loads(details["parameters"]))
    return tokens
