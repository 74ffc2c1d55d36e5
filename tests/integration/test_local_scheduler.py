"""The local stack's scheduler (``local.scheduler``): moto never fires scheduled rules, so the
local stack does, at the rule's rate, through its Lambda runtime (a fake one here)."""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from local.__main__ import _seconds_env
from local.lambda_runtime import Invocation
from local.scheduler import Schedule, ScheduleError, Scheduler, Target, parse_rate, scheduled_event

RULE_ARN = "arn:aws:events:us-east-1:123456789012:rule/account-connections-NightlySchedule-ABC"
FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:account-connections-Nightly-XYZ"
OK = Invocation(b"{}", function_error=False, cold_start=False, duration_ms=1.0)


@pytest.mark.parametrize(
    ("expression", "seconds"),
    [
        ("rate(1 minute)", 60),
        ("rate(5 minutes)", 300),
        ("rate(60 minutes)", 3600),
        ("rate(1 hour)", 3600),
        ("rate(12 hours)", 43200),
        ("rate(1 day)", 86400),
        ("rate(7 days)", 604800),
    ],
)
def test_a_rate_is_its_seconds(expression: str, seconds: int) -> None:
    assert parse_rate(expression) == seconds


@pytest.mark.parametrize(
    ("expression", "says"),
    [
        ("cron(0 12 * * ? *)", "cron(...) schedules are not supported"),
        ("rate(5 minute)", "rate(5 minutes)"),  # EventBridge refuses a singular unit for 5
        ("rate(1 minutes)", "rate(1 minute)"),  # and a plural one for 1
        ("rate(0 minutes)", "positive"),
        ("rate(-5 minutes)", "only rate(N minute|minutes|hour|hours|day|days)"),
        ("rate(1.5 hours)", "only rate("),
        ("rate(2 weeks)", "only rate("),
        ("rate(5minutes)", "only rate("),
        ("at(2026-12-02T12:00:00)", "only rate("),
        ("", "only rate("),
    ],
)
def test_other_schedules_are_refused_naming_the_rule(expression: str, says: str) -> None:
    with pytest.raises(ScheduleError) as refused:
        parse_rate(expression, "NightlySchedule")
    assert str(refused.value).startswith(f"rule NightlySchedule: {expression!r}: ")
    assert says in str(refused.value)


@pytest.mark.parametrize("value", ["0", "-5", "soon", "nan", "inf", "5 s"])
def test_python_m_local_refuses_an_interval_that_is_not_a_positive_number(
    value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOCAL_DIGEST_INTERVAL_SECONDS", value)
    with pytest.raises(SystemExit) as refused:
        _seconds_env("LOCAL_DIGEST_INTERVAL_SECONDS")
    assert (
        str(refused.value)
        == f"error: LOCAL_DIGEST_INTERVAL_SECONDS must be a positive number of seconds, not {value!r}"
    )


@pytest.mark.parametrize(("value", "seconds"), [("5", 5.0), ("0.2", 0.2), ("", None), (None, None)])
def test_python_m_local_reads_the_interval_in_seconds(
    value: str | None, seconds: float | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    if value is None:
        monkeypatch.delenv("LOCAL_DIGEST_INTERVAL_SECONDS", raising=False)
    else:
        monkeypatch.setenv("LOCAL_DIGEST_INTERVAL_SECONDS", value)
    assert _seconds_env("LOCAL_DIGEST_INTERVAL_SECONDS") == seconds


def test_the_event_is_the_one_eventbridge_sends_for_a_scheduled_rule() -> None:
    event = scheduled_event(RULE_ARN)
    assert set(event) == {
        "version",
        "id",
        "detail-type",
        "source",
        "account",
        "time",
        "region",
        "resources",
        "detail",
    }
    assert event["version"] == "0"
    assert event["detail-type"] == "Scheduled Event"
    assert event["source"] == "aws.events"
    assert (event["account"], event["region"]) == ("123456789012", "us-east-1")
    assert event["resources"] == [RULE_ARN]
    assert event["detail"] == {}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", event["time"])
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}", event["id"])
    assert scheduled_event(RULE_ARN)["id"] != event["id"]


class FakeRuntime:
    """Records each invocation; ``behave`` decides what the n-th one does (0-based)."""

    def __init__(self, behave: Callable[[int], Invocation] = lambda n: OK) -> None:
        self.behave = behave
        self.calls: list[tuple[float, str, Any]] = []
        self.active = 0
        self.most_active = 0
        self._lock = threading.Lock()

    def invoke(self, name_or_arn: str, event: Any, request_id: str | None = None) -> Invocation:
        with self._lock:
            number = len(self.calls)
            self.calls.append((time.monotonic(), name_or_arn, event))
            self.active += 1
            self.most_active = max(self.most_active, self.active)
        try:
            return self.behave(number)
        finally:
            with self._lock:
                self.active -= 1


def _schedule(interval: float, target_input: Any = None) -> Schedule:
    target = Target("NightlyTarget", "NightlyFunction", FUNCTION_ARN, target_input)
    return Schedule("NightlySchedule", RULE_ARN, "rate(1 day)", 86400, interval, (target,))


@pytest.fixture
def running() -> Iterator[Callable[[Schedule, FakeRuntime], Scheduler]]:
    started: list[Scheduler] = []

    def start(schedule: Schedule, runtime: FakeRuntime) -> Scheduler:
        scheduler = Scheduler([schedule], runtime)
        scheduler.start()
        started.append(scheduler)
        return scheduler

    yield start
    for scheduler in started:
        scheduler.stop()


def test_a_target_is_invoked_every_interval_with_a_new_scheduled_event(
    running: Callable[[Schedule, FakeRuntime], Scheduler],
) -> None:
    runtime = FakeRuntime()
    started = time.monotonic()
    running(_schedule(0.2), runtime)
    time.sleep(1.1)
    calls = list(runtime.calls)
    # At 0.2, 0.4, ... s from the start: the first one interval after it, as in EventBridge.
    assert 4 <= len(calls) <= 6, calls
    assert calls[0][0] - started >= 0.19
    gaps = [later[0] - earlier[0] for earlier, later in zip(calls, calls[1:], strict=False)]
    assert all(0.1 <= gap <= 0.35 for gap in gaps), gaps
    assert {arn for _, arn, _ in calls} == {FUNCTION_ARN}
    assert all(event["resources"] == [RULE_ARN] for _, _, event in calls)
    assert len({event["id"] for _, _, event in calls}) == len(calls)


def test_a_target_with_a_constant_input_gets_that_input(
    running: Callable[[Schedule, FakeRuntime], Scheduler],
) -> None:
    runtime = FakeRuntime()
    running(_schedule(0.1, {"job": "nightly"}), runtime)
    time.sleep(0.35)
    assert runtime.calls
    assert all(event == {"job": "nightly"} for _, _, event in runtime.calls)


def test_a_rule_never_runs_twice_at_once_a_tick_during_a_run_is_skipped(
    running: Callable[[Schedule, FakeRuntime], Scheduler], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="local.scheduler")

    def slow(number: int) -> Invocation:
        time.sleep(0.45)
        return OK

    runtime = FakeRuntime(slow)
    running(_schedule(0.1), runtime)
    time.sleep(1.2)
    # Runs start at 0.1 s, then at the first tick after each ends (about 0.6 s, 1.1 s).
    assert runtime.most_active == 1
    assert 2 <= len(runtime.calls) <= 3, runtime.calls
    skipped = [record for record in caplog.records if "tick skipped" in record.getMessage()]
    assert skipped
    assert "NightlySchedule" in skipped[0].getMessage() and "NightlyFunction" in skipped[0].getMessage()


def test_a_failing_run_is_logged_with_its_function_and_rule_and_the_schedule_goes_on(
    running: Callable[[Schedule, FakeRuntime], Scheduler], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="local.scheduler")
    error = {"errorType": "DigestRaced", "errorMessage": "the head moved", "stackTrace": []}

    def failing(number: int) -> Invocation:
        if number == 0:
            raise RuntimeError("the worker could not be reached")
        if number == 1:
            return Invocation(
                json.dumps(error).encode(), function_error=True, cold_start=False, duration_ms=2
            )
        return OK

    runtime = FakeRuntime(failing)
    scheduler = running(_schedule(0.15), runtime)
    time.sleep(0.8)
    assert len(runtime.calls) >= 4, runtime.calls
    assert scheduler._thread is not None and scheduler._thread.is_alive()
    errors = [record for record in caplog.records if record.levelno == logging.ERROR]
    assert len(errors) == 2, [record.getMessage() for record in errors]
    for record in errors:
        assert "scheduled run of NightlyFunction (rule NightlySchedule) failed" in record.getMessage()
    assert errors[0].exc_info is not None and "could not be reached" in str(errors[0].exc_info[1])
    assert errors[1].getMessage().endswith("failed: DigestRaced: the head moved")


def test_stop_ends_the_schedule(running: Callable[[Schedule, FakeRuntime], Scheduler]) -> None:
    runtime = FakeRuntime()
    scheduler = running(_schedule(0.1), runtime)
    time.sleep(0.35)
    thread = scheduler._thread
    started = time.monotonic()
    scheduler.stop()
    assert time.monotonic() - started < 0.5
    assert thread is not None and not thread.is_alive()
    count = len(runtime.calls)
    assert count >= 2
    time.sleep(0.4)
    assert len(runtime.calls) == count


def test_an_interval_override_is_said_in_the_start_up_line() -> None:
    assert (
        _schedule(5).describe()
        == "NightlySchedule: NightlyFunction every 5 s (the template's rate(1 day), overridden)"
    )
    as_declared = Schedule("NightlySchedule", RULE_ARN, "rate(1 day)", 86400, 86400, _schedule(1).targets)
    assert as_declared.describe() == "NightlySchedule: NightlyFunction every 1 d (rate(1 day))"
