"""Scheduled EventBridge rules, fired locally: moto stores them but never fires them.

After the deploy, each rule the template declares is read back from moto's EventBridge
(``describe_rule``, ``list_targets_by_rule``), so its schedule is the one the deploy resolved
(``rate(${DigestIntervalMinutes} minutes)`` with the parameter's value). Every enabled rule with
a ``ScheduleExpression`` then invokes its Lambda targets with the event EventBridge sends for a
scheduled rule, every interval from the start (the first run one interval after it), as AWS
does. Only ``rate(N minute|minutes|hour|hours|day|days)`` is supported; anything else (a
``cron(...)`` schedule, a target that is not one of the stack's functions, an input path or
transformer) stops the local stack at start-up with a message naming the rule.

As in AWS, the invocation is asynchronous: a run that fails (a function error, a timeout, an
exception) is logged with its function and rule, and the schedule goes on. Unlike AWS, a failed
run is not retried, and a tick that comes while the rule's previous run is still going is
skipped (logged), so one rule never runs twice at once.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from local.deployed import DeployedStack
from local.lambda_runtime import Invocation

log = logging.getLogger(__name__)

_RATE = re.compile(r"rate\(([0-9]+) (minute|minutes|hour|hours|day|days)\)")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


class ScheduleError(ValueError):
    """A scheduled rule the local stack cannot fire as AWS would."""


def parse_rate(expression: str, rule: str = "") -> int:
    """The seconds between runs of a ``rate(...)`` schedule, by EventBridge's rules: a positive
    whole number and a unit, singular for 1 (``rate(1 hour)``) and plural otherwise
    (``rate(5 minutes)``). Raises ``ScheduleError`` (naming ``rule``) for anything else."""
    where = f"rule {rule}: " if rule else ""
    found = _RATE.fullmatch(expression)
    if found is None:
        kind = "cron(...) schedules are" if expression.startswith("cron(") else "this schedule is"
        raise ScheduleError(
            f"{where}{expression!r}: {kind} not supported by the local stack's scheduler, only "
            "rate(N minute|minutes|hour|hours|day|days)"
        )
    value, unit = int(found.group(1)), found.group(2)
    if value < 1:
        raise ScheduleError(f"{where}{expression!r}: the rate must be a positive whole number")
    singular = unit.removesuffix("s")
    if (value == 1) != (unit == singular):
        expected = f"rate(1 {singular})" if value == 1 else f"rate({value} {singular}s)"
        raise ScheduleError(
            f"{where}{expression!r}: EventBridge wants the unit singular for 1, plural otherwise: {expected}"
        )
    return value * _UNIT_SECONDS[singular]


@dataclass(frozen=True)
class Target:
    """A Lambda target of a rule: the function, and the constant ``Input`` it gets instead of the
    event, if the target has one."""

    target_id: str
    function: str  # the function's logical id, for the log
    function_arn: str
    input: Any | None = None


@dataclass(frozen=True)
class Schedule:
    """An enabled scheduled rule as the deploy created it, and how often the local stack fires it."""

    rule: str  # the rule's logical id
    rule_arn: str
    expression: str
    template_interval_seconds: int
    interval_seconds: float
    targets: tuple[Target, ...]

    @property
    def overridden(self) -> bool:
        return self.interval_seconds != self.template_interval_seconds

    def describe(self) -> str:
        """One line for the start-up output: which functions run how often."""
        functions = ", ".join(target.function for target in self.targets)
        where = f"the template's {self.expression}, overridden" if self.overridden else self.expression
        return f"{self.rule}: {functions} every {_duration(self.interval_seconds)} ({where})"


def _duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size:.0f} {unit}"
    return f"{seconds:g} s"


def read_schedules(stack: DeployedStack, interval_seconds: float | None = None) -> list[Schedule]:
    """Every enabled scheduled rule of the deployed stack, read back from moto's EventBridge.
    ``interval_seconds`` replaces every rule's interval (``None``: each rule's own). Raises
    ``ScheduleError`` for a rule that the local stack cannot fire."""
    if interval_seconds is not None and not interval_seconds > 0:
        raise ScheduleError(
            f"the schedules' interval must be a positive number of seconds, not {interval_seconds}"
        )
    events = stack.client("events")
    schedules = []
    for logical_id in sorted(stack.template.resources("AWS::Events::Rule")):
        if not stack.declared(logical_id):
            continue
        name = stack.physical_ids[logical_id]
        rule = events.describe_rule(Name=name)
        expression = rule.get("ScheduleExpression")
        if not expression or rule.get("State") == "DISABLED":
            continue
        template_interval = parse_rate(expression, logical_id)
        found = []
        for page in events.get_paginator("list_targets_by_rule").paginate(Rule=name):
            found.extend(page["Targets"])
        targets = tuple(_target(stack, logical_id, target) for target in found)
        if not targets:
            continue  # EventBridge fires nothing either
        schedules.append(
            Schedule(
                rule=logical_id,
                rule_arn=rule["Arn"],
                expression=expression,
                template_interval_seconds=template_interval,
                interval_seconds=interval_seconds if interval_seconds is not None else template_interval,
                targets=targets,
            )
        )
    return schedules


def _target(stack: DeployedStack, rule: str, target: dict[str, Any]) -> Target:
    arn = target["Arn"]
    try:
        function = stack.function_by_arn(arn) if arn.startswith("arn:aws:lambda:") else None
    except KeyError:
        function = None
    if function is None:
        raise ScheduleError(f"rule {rule}: target {target['Id']} ({arn}) is not a function of the stack")
    unsupported = [key for key in ("InputPath", "InputTransformer") if key in target]
    if unsupported:
        raise ScheduleError(
            f"rule {rule}: target {target['Id']} has {', '.join(unsupported)}, which the local stack's "
            "scheduler does not apply (only a constant Input)"
        )
    constant = json.loads(target["Input"]) if "Input" in target else None
    return Target(target["Id"], function.logical_id, function.arn, constant)


def scheduled_event(rule_arn: str, at: datetime | None = None) -> dict[str, Any]:
    """The event EventBridge sends to a scheduled rule's targets."""
    _, _, _, region, account, _ = rule_arn.split(":", 5)
    at = at or datetime.now(UTC)
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account,
        "time": at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [rule_arn],
        "detail": {},
    }


class Invoker(Protocol):
    """What the scheduler invokes functions through (``local.lambda_runtime.LambdaRuntime``)."""

    def invoke(self, name_or_arn: str, event: Any, request_id: str | None = None) -> Invocation: ...


class Scheduler:
    """Fires ``schedules`` through ``runtime`` on a daemon thread, from ``start()`` to ``stop()``."""

    def __init__(self, schedules: Sequence[Schedule], runtime: Invoker) -> None:
        self.schedules = list(schedules)
        self.runtime = runtime
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._running: set[str] = set()  # rules whose run is still going

    def start(self) -> None:
        if self._thread is not None or not self.schedules:
            return
        self._thread = threading.Thread(target=self._loop, name="local-scheduler", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5) -> None:
        """No tick after this returns; a run already going finishes (or fails) on its own thread."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _loop(self) -> None:
        started = time.monotonic()
        due = {schedule.rule: started + schedule.interval_seconds for schedule in self.schedules}
        while not self._stopping.is_set():
            now = time.monotonic()
            for schedule in self.schedules:
                if due[schedule.rule] <= now:
                    self._tick(schedule)
                    # At a fixed rate from the start; ticks missed meanwhile are not made up.
                    missed = int((now - due[schedule.rule]) // schedule.interval_seconds)
                    due[schedule.rule] += (missed + 1) * schedule.interval_seconds
            self._stopping.wait(max(0.0, min(due.values()) - time.monotonic()))

    def _tick(self, schedule: Schedule) -> None:
        with self._lock:
            if schedule.rule in self._running:
                log.info(
                    "rule %s: tick skipped, its previous run (%s) is still going",
                    schedule.rule,
                    ", ".join(target.function for target in schedule.targets),
                )
                return
            self._running.add(schedule.rule)
        thread = threading.Thread(
            target=self._run, args=(schedule,), name=f"schedule-{schedule.rule}", daemon=True
        )
        thread.start()

    def _run(self, schedule: Schedule) -> None:
        try:
            event = scheduled_event(schedule.rule_arn)
            for target in schedule.targets:
                self._invoke(schedule, target, event)
        finally:
            with self._lock:
                self._running.discard(schedule.rule)

    def _invoke(self, schedule: Schedule, target: Target, event: dict[str, Any]) -> None:
        payload = event if target.input is None else target.input
        log.debug("rule %s: invoking %s (event %s)", schedule.rule, target.function, event["id"])
        try:
            result = self.runtime.invoke(target.function_arn, payload)
        except Exception:
            if not self._stopping.is_set():
                log.exception("scheduled run of %s (rule %s) failed", target.function, schedule.rule)
            return
        if not result.function_error:
            log.debug("rule %s: %s ran in %.0f ms", schedule.rule, target.function, result.duration_ms)
        elif not self._stopping.is_set():
            log.error(
                "scheduled run of %s (rule %s) failed: %s",
                target.function,
                schedule.rule,
                _error_summary(result.payload),
            )


def _error_summary(payload: bytes) -> str:
    try:
        error = json.loads(payload)
        return f"{error['errorType']}: {error['errorMessage']}"
    except (ValueError, KeyError, TypeError):
        return payload.decode(errors="replace")[:500]
