"""State machine executions in moto, without parsing the definition again for each one.

moto 5.2.5 parses a state machine's definition (Amazon States Language, with its pure-Python
ANTLR parser, then its preprocessor into evaluation components) at the start of every execution
(``ExecutionWorker._get_evaluation_entrypoint``): about 50 ms of CPU for this service's
definition, and under 20 concurrent creates about 28% of the stack process's busy time. The
program it builds depends on the definition text only, so here it is built once per definition
(a state machine's version, or an update's new revision, has its own text) and shared.

Sharing is safe because evaluation does not change the program: everything an execution changes
lives in its ``Environment`` (states, heap, frames, events), and the components' attributes are
set while the preprocessor builds them. The one exception is ``EvalComponent.heap_key``, a uid a
component draws on first use as its key into the execution's heap (a retrier's attempt count
and backoff); drawn lazily by two executions at once, one of them would read its count under the
other's key and lose it. So every component's key is drawn here, once, before the program is
shared.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from moto.stepfunctions.parser.asl.component.eval_component import EvalComponent
from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

MAX_PROGRAMS = 32  # definitions kept; this stack has one state machine
_PROGRAMS: OrderedDict[str, EvalComponent] = OrderedDict()
_LOCK = threading.Lock()


def _draw_heap_keys(value: Any, seen: set[int]) -> None:
    """Touch ``heap_key`` on every component reachable from ``value`` (lists, dicts, attributes)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list | tuple | set | frozenset):
            stack.extend(item)
        elif hasattr(item, "__dict__") and type(item).__module__.startswith("moto.stepfunctions"):
            if isinstance(item, EvalComponent):
                _ = item.heap_key
            stack.extend(vars(item).values())


def program_for(definition: str) -> EvalComponent:
    """The evaluation program of ``definition``, parsed on first use."""
    with _LOCK:
        program = _PROGRAMS.get(definition)
        if program is not None:
            _PROGRAMS.move_to_end(definition)
            return program
        # Parsed under the lock: concurrent first executions of one definition parse it once.
        program = AmazonStateLanguageParser.parse(definition)[0]
        _draw_heap_keys(program, set())
        _PROGRAMS[definition] = program
        while len(_PROGRAMS) > MAX_PROGRAMS:
            _PROGRAMS.popitem(last=False)
        return program


def clear() -> None:
    with _LOCK:
        _PROGRAMS.clear()


def install() -> None:
    """Patch moto's execution worker in this process (idempotent). moto's test-state worker
    (``TestState``, its own parser) keeps its own entry point."""
    if getattr(ExecutionWorker, "_account_connections_cached", False):
        return

    def _get_evaluation_entrypoint(self: ExecutionWorker) -> EvalComponent:
        return program_for(self._evaluation_details.state_machine_details.definition)

    ExecutionWorker._get_evaluation_entrypoint = _get_evaluation_entrypoint  # type: ignore[method-assign]
    ExecutionWorker._account_connections_cached = True  # type: ignore[attr-defined]
