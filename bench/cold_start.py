"""Cold start: a fresh process to a handled first event, per function of template.yaml.

The stack (``local.stack.LocalStack``) runs in this process only to give each function what the
local stack gives its workers: its environment as deployed from the template
(``local.lambda_runtime.function_environment``), AWS pointed at the stack's moto server, the
seed, and one pending connection for the events to name. Each measured process is started the
way a worker is (``python -c``, the function's folder as working directory, the layer on
``PYTHONPATH``), imports the handler, handles one event from events/, and reports the moment it
is done on the machine's monotonic clock; the baseline process imports boto3 and creates one
client in the same environment. Rounds are interleaved (baseline, then every function in a
shuffled order) so that noise hits all of them alike.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.client import Client
from bench.report import Section, Table, Target, median
from local.seed_data import ADMIN_ACCOUNT, REQUESTER, SPACE_ID, TRUSTED_ROLE

ROOT = Path(__file__).resolve().parent.parent
EVENTS = ROOT / "events"
RUNS = int(os.environ.get("BENCH_COLD_RUNS", "9"))
# Each function against the framework floor (what any handler on boto3, powertools and pydantic pays).
TARGET_RATIO = 1.10
# As deployed: tracing on, in Lambda (powertools then loads the X-Ray SDK; the trace header names a
# sampled trace, the daemon address a port nobody listens on: segments are sent over UDP to nowhere).
TRACED_ENV = {
    "_X_AMZN_TRACE_ID": "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
    "AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:2000",
}
SPAWN_TIMEOUT_S = 60
# The connection id the events in events/ name, replaced by the probe connection's.
EVENT_CONNECTION_ID = "7b0a6f43-1c6e-4f4a-9f0e-2b7f1d6f9a51"
# Which event each function handles first (a route it serves, or its workflow step).
FIRST_EVENT = {
    "RequesterApiFunction": "http_list_connections",
    "OperatorApiFunction": "http_list_approvers",
    "AuditApiFunction": "http_audit_connections",
    "DecideConnectionFunction": "http_verify_page",
    "ApiDocsFunction": "http_openapi",
    "NotifyApproverFunction": "sfn_notify_approver",
    "VerifyConnectionFunction": "sfn_verify_connection",
    "AttachRolesFunction": "sfn_attach_roles",
    "RecordOutcomeFunction": "sfn_record_outcome_verified",
    "DigestFunction": "schedule_make_digest",
}

# Run in the measured process. argv: mode ("handler" or "baseline"), event file, result file, and
# "profile" to profile the handling of the first event (cProfile: the top functions by cumulative time).
_CHILD = r"""
import json, os, sys, time
mode, event_path, result_path = sys.argv[1:4]
profiling = sys.argv[4:5] == ["profile"]
outcome = "ok"
if mode == "baseline":
    import boto3
    boto3.client("dynamodb")
    imported = time.monotonic()
elif mode in ("floor", "floor-held"):
    # What any handler on this stack pays: boto3 and a client, powertools' Logger, Metrics and a
    # validating HTTP resolver, and one pydantic model validated. "floor-held": the same, loaded
    # as the functions load (account_connections.startup: the cyclic collector held until it is
    # loaded, then what was loaded frozen).
    import gc
    if mode == "floor-held":
        gc.disable()
    import boto3
    boto3.client("dynamodb")
    from aws_lambda_powertools import Logger, Metrics
    from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
    from pydantic import BaseModel
    Logger()
    Metrics()
    APIGatewayHttpResolver(enable_validation=True)
    class Probe(BaseModel):
        name: str
    Probe.model_validate({"name": "floor"})
    if mode == "floor-held":
        gc.freeze()
        gc.enable()
    imported = time.monotonic()
else:
    import importlib
    # The first event's AWS calls, each timed from the client's call to its parsed answer (SigV4,
    # the round trip to moto, the first use of each operation's model): what a function pays for
    # the calls its event must make, which the floor makes none of.
    import botocore.client
    aws_calls = []
    _make_api_call = botocore.client.BaseClient._make_api_call
    def _timed_call(self, operation_name, api_params):
        started = time.monotonic()
        try:
            return _make_api_call(self, operation_name, api_params)
        finally:
            aws_calls.append((self.meta.service_model.service_name + "." + operation_name,
                              (time.monotonic() - started) * 1000))
    botocore.client.BaseClient._make_api_call = _timed_call
    sys.path.insert(0, os.getcwd())
    module_name, _, function_name = os.environ["_HANDLER"].rpartition(".")
    handler = getattr(importlib.import_module(module_name), function_name)
    imported = time.monotonic()
    with open(event_path) as f:
        event = json.load(f)
    class Context:
        function_name = os.environ["AWS_LAMBDA_FUNCTION_NAME"]
        function_version = "$LATEST"
        invoked_function_arn = os.environ["LOCAL_FUNCTION_ARN"]
        memory_limit_in_mb = int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"))
        aws_request_id = "cold-start-bench"
        log_group_name = log_stream_name = ""
        identity = client_context = None
        def get_remaining_time_in_millis(self):
            return 30000
    if profiling:
        import cProfile
        profiler = cProfile.Profile()
        profiler.enable()
    try:
        result = handler(event, Context())
        if isinstance(result, dict) and "statusCode" in result:
            outcome = "HTTP " + str(result["statusCode"])
    except Exception as exc:
        outcome = type(exc).__name__
done = time.monotonic()
profile = []
if profiling:
    import pstats
    profiler.disable()
    stats = pstats.Stats(profiler)
    for (file, line, name), (_cc, _nc, own, cumulative, _callers) in stats.stats.items():
        where = f"{os.path.basename(os.path.dirname(file))}/{os.path.basename(file)}:{line}" if line else file
        profile.append((own * 1000, cumulative * 1000, f"{where}({name})"))
    profile.sort(reverse=True)
    profile = profile[:15]
with open(result_path, "w") as f:
    json.dump({"imported": imported, "done": done, "outcome": outcome, "profile": profile,
               "aws_calls": globals().get("aws_calls", [])}, f)
"""


@dataclass
class Runs:
    name: str
    total_ms: list[float] = field(default_factory=list)
    init_ms: list[float] = field(default_factory=list)
    outcomes: set[str] = field(default_factory=set)
    calls_ms: list[float] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)


def template_functions() -> list[str]:
    """The logical ids of template.yaml's functions, in template order."""
    from samcli.yamlhelper import yaml_parse

    resources = yaml_parse((ROOT / "template.yaml").read_text())["Resources"]
    return [name for name, res in resources.items() if res["Type"] == "AWS::Serverless::Function"]


def _spawn(
    mode: str,
    cwd: Path,
    env: dict[str, str],
    event: Path,
    extra: list[str] | None = None,
    *,
    profile: bool = False,
) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as result_file:
        result_path = result_file.name
    try:
        started = time.monotonic()
        completed = subprocess.run(
            [sys.executable, *(extra or []), "-c", _CHILD, mode, str(event), result_path]
            + (["profile"] if profile else []),
            cwd=cwd,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            timeout=SPAWN_TIMEOUT_S,
        )
        text = Path(result_path).read_text()
        if completed.returncode != 0 or not text:
            raise RuntimeError(
                f"{mode} process failed ({completed.returncode}): {completed.stderr[-2000:]!r}"
            )
        result = json.loads(text)
        result["total_ms"] = (result["done"] - started) * 1000
        result["init_ms"] = (result["imported"] - started) * 1000
        result["stderr"] = completed.stderr.decode(errors="replace")
        return result
    finally:
        os.unlink(result_path)


def _probe_connection(stack: Any) -> tuple[str, str]:
    """A pending request in the seed's space whose approval email was sent (its workflow waits)."""
    client = Client(stack.url)
    created = client.call(
        "POST",
        f"/spaces/{SPACE_ID}/connections",
        {
            "accountId": ADMIN_ACCOUNT,
            "displayName": "Cold start probe",
            "roleArns": [f"arn:aws:iam::{ADMIN_ACCOUNT}:role/{TRUSTED_ROLE}"],
        },
        token=stack.token(REQUESTER),
    )
    if created.status != 201:
        raise RuntimeError(f"probe connection: {created.status} {created.body}")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not stack.outbox.as_json():
        time.sleep(0.1)
    return created.body["connectionId"], created.body["connectionToken"]


def _stop_executions(stack: Any) -> None:
    """End the probe's workflow: moto's execution threads would outlive the stack in this process."""
    assert stack.deployed is not None
    sfn = stack.deployed.client("stepfunctions")
    for machine in sfn.list_state_machines()["stateMachines"]:
        running = sfn.list_executions(stateMachineArn=machine["stateMachineArn"], statusFilter="RUNNING")
        for execution in running["executions"]:
            try:
                sfn.stop_execution(executionArn=execution["executionArn"])
            except Exception:  # moto cannot stop an execution whose worker has not started yet
                continue


def _events(folder: Path, connection_id: str, connection_token: str) -> dict[str, Path]:
    paths = {}
    for function, name in FIRST_EVENT.items():
        event = json.loads((EVENTS / f"{name}.json").read_text().replace(EVENT_CONNECTION_ID, connection_id))
        if name == "http_verify_page":
            event["rawQueryString"] = f"token={connection_token}"
            event["queryStringParameters"] = {"token": connection_token}
        path = folder / f"{function}.json"
        path.write_text(json.dumps(event))
        paths[function] = path
    return paths


def _importtime(stderr: str, top: int = 12) -> tuple[list[tuple[str, float, float]], list[tuple[str, float]]]:
    """``-X importtime`` output: each top-level package's costliest import (cumulative ms, which
    includes what it imports), and any module by its own (self) ms."""
    packages: dict[str, tuple[str, float, float]] = {}
    by_self: list[tuple[str, float]] = []
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "[us]" in line:
            continue
        self_us, cumulative_us, raw_name = line.split(":", 1)[1].split("|", 2)
        name = raw_name.strip()
        by_self.append((name, int(self_us) / 1000))
        package = name.split(".")[0]
        if package not in packages or int(cumulative_us) / 1000 > packages[package][1]:
            packages[package] = (name, int(cumulative_us) / 1000, int(self_us) / 1000)
    by_cumulative = sorted(packages.values(), key=lambda row: -row[1])
    by_self.sort(key=lambda row: -row[1])
    return by_cumulative[:top], by_self[:top]


def run() -> Section:
    from local.lambda_runtime import function_environment
    from local.stack import LocalStack

    functions = template_functions()
    section = Section(
        "1. Cold start",
        "each figure is a fresh `python` process (subprocess spawn, the worker's way: function folder as "
        "working directory, the layer on PYTHONPATH, the function's environment as the local stack resolves "
        "it from template.yaml, AWS at a moto server holding the deployed stack and its seed) until its "
        "handler returned from one realistic event of events/ (spawn to `handler()` returned, on the "
        f"monotonic clock); `init` is spawn to handler imported. Median of {RUNS} interleaved runs. The "
        "bare-boto3 process imports boto3 and creates one DynamoDB client in the same environment; the "
        "framework floor also creates powertools' Logger, Metrics and "
        "`APIGatewayHttpResolver(enable_validation=True)` and validates one pydantic model: what any "
        "handler on this stack pays. The target compares each function with the floor, tracing off "
        "(`POWERTOOLS_TRACE_DISABLED`, as the local stack runs it); the second table is the same with "
        "tracing on, as deployed.",
    )
    with (
        tempfile.TemporaryDirectory(prefix="bench-cold-") as tmp,
        LocalStack(port=0, state_dir=Path(tmp) / "state", progress=lambda message: None) as stack,
    ):
        assert stack.deployed is not None and stack.moto is not None
        specs = stack.deployed.functions
        connection_id, connection_token = _probe_connection(stack)
        events = _events(Path(tmp), connection_id, connection_token)
        envs = {
            name: function_environment(specs[name], stack.moto.endpoint)
            for name in functions
            if name in specs
        }
        missing = [name for name in functions if name not in specs or name not in FIRST_EVENT]
        measured = [name for name in functions if name not in missing]
        baseline_env = envs[measured[0]]
        traced_envs = {
            name: {key: value for key, value in envs[name].items() if key != "POWERTOOLS_TRACE_DISABLED"}
            | TRACED_ENV
            | {"LAMBDA_TASK_ROOT": str(specs[name].code_dir)}
            for name in measured
        }
        runs = {name: Runs(name) for name in ["baseline", "floor", "floor-held", *measured]}
        traced_runs = {name: Runs(name) for name in measured}
        order = list(measured)
        for _ in range(RUNS):
            random.shuffle(order)
            for name in ["baseline", "floor", "floor-held", *order]:
                if name in ("baseline", "floor", "floor-held"):
                    result = _spawn(name, Path(tmp), baseline_env, events[measured[0]])
                else:
                    result = _spawn("handler", specs[name].code_dir, envs[name], events[name])
                    runs[name].calls_ms.append(sum(ms for _, ms in result["aws_calls"]))
                    runs[name].calls = [call for call, _ in result["aws_calls"]]
                runs[name].total_ms.append(result["total_ms"])
                runs[name].init_ms.append(result["init_ms"])
                runs[name].outcomes.add(result["outcome"])
            for name in order:
                result = _spawn("handler", specs[name].code_dir, traced_envs[name], events[name])
                traced_runs[name].total_ms.append(result["total_ms"])
                traced_runs[name].init_ms.append(result["init_ms"])
                traced_runs[name].outcomes.add(result["outcome"])
        base = median(runs["baseline"].total_ms)
        floor = median(runs["floor"].total_ms)
        table = Table(
            "Spawn to first event handled (ms, median), tracing off",
            ["function", "first event", "outcome", "init ms", "first event ms", "AWS calls", "in calls ms",
             "total ms", "x boto3", "x floor", f"target <= {TARGET_RATIO:.2f}x floor", "x floor less calls"],
        )  # fmt: skip
        base_init, floor_init = median(runs["baseline"].init_ms), median(runs["floor"].init_ms)
        table.rows.append(
            ["bare boto3: import boto3 + 1 client", "-", "-", base_init, "-", "-", "-", base, "1.00x", "-",
             "-", "-"]
        )  # fmt: skip
        floor_name = "framework floor: + Logger, Metrics, resolver (validation), 1 model"
        table.rows.append(
            [floor_name, "-", "-", floor_init, "-", "0", "-", floor, f"{floor / base:.2f}x", "1.00x", "-",
             "-"]
        )  # fmt: skip
        held = median(runs["floor-held"].total_ms)
        table.rows.append(
            ["framework floor loaded as the functions load (collector held, then frozen)", "-", "-",
             median(runs["floor-held"].init_ms), "-", "0", "-", held, f"{held / base:.2f}x",
             f"{held / floor:.2f}x", "-", "-"]
        )  # fmt: skip
        worst = ("", 0.0)
        for name in measured:
            total = median(runs[name].total_ms)
            ratio = total / floor
            worst = max(worst, (name, ratio), key=lambda row: row[1])
            table.rows.append(
                [
                    name,
                    FIRST_EVENT[name],
                    ", ".join(sorted(runs[name].outcomes)),
                    median(runs[name].init_ms),
                    median([t - i for t, i in zip(runs[name].total_ms, runs[name].init_ms, strict=True)]),
                    str(len(runs[name].calls)),
                    median(runs[name].calls_ms),
                    total,
                    f"{total / base:.2f}x",
                    f"{ratio:.2f}x",
                    "MET" if ratio <= TARGET_RATIO else "MISSED",
                    f"{(total - median(runs[name].calls_ms)) / floor:.2f}x",
                ]
            )
        section.tables.append(table)
        traced_table = Table(
            "The same with tracing on, as deployed (X-Ray SDK loaded, a sampled trace; ms, median)",
            ["function", "outcome", "init ms", "total ms", "x floor", "vs tracing off"],
        )
        for name in measured:
            total = median(traced_runs[name].total_ms)
            traced_table.rows.append([name, ", ".join(sorted(traced_runs[name].outcomes)),
                                      median(traced_runs[name].init_ms), total, f"{total / floor:.2f}x",
                                      f"+{total - median(runs[name].total_ms):.0f} ms"])  # fmt: skip
        section.tables.append(traced_table)
        section.tables.append(
            Table(
                "The first event's AWS calls (one run's, in order; the floor makes none)",
                ["function", "calls"],
                [[name, ", ".join(runs[name].calls) or "none"] for name in measured],
            )
        )
        section.notes.append(
            "`in calls ms`: the median time inside the first event's AWS calls (each from the client's "
            "call to its parsed answer: signing, the round trip to the stack's moto, the first use of the "
            "operation's model); `x floor less calls` is the total without it against the floor: what "
            "the function adds besides the calls its event must make."
        )
        section.notes.append(
            "Every function holds Python's cyclic collector while its handler loads, and while a "
            "service's first client loads its SDK models, and then freezes what it loaded "
            "(`account_connections.startup`); the floor as the issue defines it does not. The third "
            "row is the floor loaded the same way: against it the worst function is at "
            f"{worst[1] * floor / held:.2f}x ({worst[0]}), which is what the functions add once the "
            "collector's share of the framework's own loading is taken off both."
        )
        above = [row[0] for row in table.rows[3:] if row[-2] == "MISSED"]
        section.targets.append(
            Target(
                f"no function above {TARGET_RATIO:.2f}x the framework floor (tracing off)",
                not above,
                f"worst {worst[0]} at {worst[1]:.2f}x of the floor's {floor:.0f} ms (the floor is "
                f"{floor / base:.2f}x bare boto3's {base:.0f} ms)"
                + (f"; above: {', '.join(above)}" if above else ""),
            )
        )

        # Where the slowest one's time goes.
        slowest = worst[0]
        profiled = _spawn("handler", specs[slowest].code_dir, envs[slowest], events[slowest], profile=True)
        section.tables.append(
            Table(
                f"{slowest}: handling its first event, top functions by own time (cProfile, one run)",
                ["function", "own ms", "cumulative ms"],
                [[name, own, cumulative] for own, cumulative, name in profiled["profile"]],
            )
        )
        traced = _spawn(
            "handler", specs[slowest].code_dir, envs[slowest], events[slowest], ["-X", "importtime"]
        )
        top_level, by_self = _importtime(traced["stderr"])
        section.tables.append(
            Table(
                f"{slowest}: packages by their costliest import, cumulative (python -X importtime, one run)",
                ["module", "cumulative ms", "self ms"],
                [list(row) for row in top_level],
            )
        )
        section.tables.append(
            Table(
                f"{slowest}: modules by self time (the same run)",
                ["module", "self ms"],
                [list(r) for r in by_self],
            )
        )
        section.notes.append(
            f"{slowest} under -X importtime: init {traced['init_ms']:.0f} ms, "
            f"total {traced['total_ms']:.0f} ms (importtime itself adds overhead)."
        )
        _stop_executions(stack)
        for name in missing:
            section.notes.append(f"{name}: not measured (no first event mapped in bench/cold_start.py)")
    return section
