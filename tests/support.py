"""Helpers every test layer shares: the template, the events in events/, handler loading."""

from __future__ import annotations

import copy
import importlib.util
import json
import sys
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

from samcli.yamlhelper import yaml_parse

ROOT = Path(__file__).resolve().parent.parent
EVENTS = ROOT / "events"
FUNCTIONS = ROOT / "functions"


@cache
def _template() -> dict[str, Any]:
    return yaml_parse((ROOT / "template.yaml").read_text())


def template() -> dict[str, Any]:
    """template.yaml, parsed with the CloudFormation short forms (a fresh copy each call)."""
    return copy.deepcopy(_template())


def resource(logical_id: str) -> dict[str, Any]:
    return template()["Resources"][logical_id]


def table_definition(table_name: str) -> dict[str, Any]:
    """``create_table`` arguments for the state table, read from template.yaml, so that tests
    cannot drift from the deployed key schema and indexes."""
    props = resource("StateTable")["Properties"]
    return {
        "TableName": table_name,
        "BillingMode": props["BillingMode"],
        "AttributeDefinitions": props["AttributeDefinitions"],
        "KeySchema": props["KeySchema"],
        "GlobalSecondaryIndexes": props["GlobalSecondaryIndexes"],
    }


def load_event(name: str, **overrides: Any) -> dict[str, Any]:
    """A real event from events/<name>.json; top-level keys can be overridden."""
    event = json.loads((EVENTS / f"{name}.json").read_text())
    event.update(overrides)
    return event


def load_handler(function_dir: str) -> ModuleType:
    """Import functions/<function_dir>/app.py as Lambda does, under a unique module name."""
    name = f"function_{function_dir}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, FUNCTIONS / function_dir / "app.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


class FakeContext:
    """The parts of LambdaContext that powertools reads."""

    function_name = "test-function"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:test-function"
    aws_request_id = "00000000-0000-0000-0000-000000000000"

    def get_remaining_time_in_millis(self) -> int:
        return 10_000
