"""``python -m local`` (``make run``): the whole service at http://127.0.0.1:3000.

Environment: ``PORT`` (default 3000), ``APPROVAL_TIMEOUT_SECONDS`` (the template's
``ApprovalTimeoutSeconds``), ``DIGEST_SETTLE_SECONDS`` (the template's ``DigestSettleSeconds``,
locally 5 by default), ``LOCAL_DIGEST_INTERVAL_SECONDS`` (how often every scheduled rule fires,
in seconds; default: the template's schedule), ``LOCAL_LAMBDA_CONCURRENCY`` (execution
environments per function, default 4), ``LOCAL_WORKER_IDLE_SECONDS`` (how long a worker may
stay idle before it is stopped, each function keeping its last one; default 30),
``LOCAL_STATE_DIR`` (where function logs go, default .local-stack), ``LOCAL_LOG_LEVEL`` (INFO;
DEBUG shows more).
"""

from __future__ import annotations

import logging
import math
import os
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType

from local.deploy import DeployError
from local.front import PortInUse
from local.lambda_runtime import WORKER_IDLE_SECONDS
from local.moto_server import DUMMY_CREDENTIALS
from local.scheduler import ScheduleError
from local.seed import SeedError
from local.seed_data import (
    ADMIN_ACCOUNT,
    ADMIN_EMAIL,
    ADMIN_ROLE,
    POLICY_ACCOUNT,
    POLICY_APPROVERS,
    POLICY_QUORUM,
    SPACE_ID,
    UNREGISTERED_ACCOUNT,
    USERS,
)
from local.stack import STATE_DIR, LocalStack
from local.template import REGION, ParameterError
from local.verify import StackMismatch


def _int_env(name: str, default: int | None) -> int | None:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise SystemExit(f"error: {name} must be a whole number, not {raw!r}") from None


def _seconds_env(name: str) -> float | None:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return None
    try:
        seconds = float(raw)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds > 0):
        raise SystemExit(f"error: {name} must be a positive number of seconds, not {raw!r}")
    return seconds


def banner(stack: LocalStack) -> str:
    url = stack.url
    aws = stack.aws_endpoint
    dummy = " ".join(f"{name}={value}" for name, value in DUMMY_CREDENTIALS.items())
    users = "\n".join(f"    {user.user_id:<7} {user.description}" for user in USERS.values())
    schedules = "".join(f"  Schedule       {schedule.describe()}\n" for schedule in stack.schedules)
    return f"""
Account connections is running (local stack, built from template.yaml).

  API            {url}
  API docs       {url}/docs   (OpenAPI: {url}/openapi.json)
  Outbox         {url}/_local/outbox.html   (JSON: {url}/_local/outbox)
  Emulated AWS   {aws}   (moto: the table, executions, topics; region {REGION})
  Function logs  {stack.log_dir}
{schedules}
  Seeded users (space {SPACE_ID!r}):
{users}
  Account {ADMIN_ACCOUNT}: administrator {ADMIN_EMAIL}, roles BuildRole (trusted) and UntrustedRole.
  Account {POLICY_ACCOUNT}: quorum {POLICY_QUORUM} of {", ".join(POLICY_APPROVERS)}, the same roles.
  Account {UNREGISTERED_ACCOUNT}: no administrator.
  Each account: role {ADMIN_ROLE} (trusts the account's root). Its temporary credentials, for
  acctconn prove ID --endpoint-url {aws}:
    curl -s '{url}/_local/aws-credentials?account={ADMIN_ACCOUNT}'

  Inspect the emulated AWS (the table, executions, topics) with the stack's dummy credentials:
    export {dummy} AWS_DEFAULT_REGION={REGION}
    aws --endpoint-url {aws} dynamodb list-tables      (boto3: endpoint_url="{aws}")

  Get a token and call the API:
    TOKEN=$(curl -s '{url}/_local/token?sub=alice' \\
            | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
    curl -s -H "Authorization: Bearer $TOKEN" {url}/spaces/{SPACE_ID}/connections

Press Ctrl-C to stop.
"""


def main() -> int:
    level = os.environ.get("LOCAL_LOG_LEVEL", "INFO").upper()
    logging.basicConfig(level=level, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    for noisy in ("werkzeug", "botocore", "urllib3", "moto"):
        logging.getLogger(noisy).setLevel(logging.WARNING if level != "DEBUG" else logging.INFO)
    port = _int_env("PORT", 3000)
    concurrency = _int_env("LOCAL_LAMBDA_CONCURRENCY", 4)
    assert port is not None and concurrency is not None
    schedule_interval = _seconds_env("LOCAL_DIGEST_INTERVAL_SECONDS")

    def _interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    # Until the stack is up, Ctrl-C or SIGTERM interrupts the start-up (which stops what started).
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)

    def progress(message: str) -> None:
        print(f"  {message}", flush=True)

    print(f"Starting the local stack on port {port}", flush=True)
    stack = LocalStack(
        port,
        approval_timeout_seconds=_int_env("APPROVAL_TIMEOUT_SECONDS", None),
        digest_settle_seconds=_int_env("DIGEST_SETTLE_SECONDS", None),
        schedule_interval_seconds=schedule_interval,
        max_workers_per_function=concurrency,
        worker_idle_seconds=_seconds_env("LOCAL_WORKER_IDLE_SECONDS") or WORKER_IDLE_SECONDS,
        state_dir=Path(os.environ.get("LOCAL_STATE_DIR") or STATE_DIR),
        progress=progress,
    )
    try:
        stack.start()
    except PortInUse:
        print(f"error: port {port} is already in use; stop what uses it or set PORT", file=sys.stderr)
        return 1
    except (ParameterError, DeployError, StackMismatch, ScheduleError, SeedError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("Interrupted; stopped.", flush=True)
        return 130

    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    print(banner(stack), flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        print("Stopping the local stack...", flush=True)
        started = time.monotonic()
        stack.stop()
        print(f"Stopped in {time.monotonic() - started:.1f} s.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
