"""Helpers every test layer shares: the template, the events in events/, handler loading, the
stores over a table, and the seed of ``local.seed_data`` put in a registry."""

from __future__ import annotations

import copy
import importlib.util
import json
import sys
import threading
import urllib.parse
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

from samcli.yamlhelper import yaml_parse

from local.seed_data import SEED

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


_KEEP: Any = object()


def http_event(
    name: str,
    *,
    sub: str | None = _KEEP,
    groups: list[str] | None = _KEEP,
    path: dict[str, str] | None = None,
    raw_path: str | None = None,
    query: dict[str, str] | None = _KEEP,
    body: Any = _KEEP,
    headers: dict[str, str | None] | None = None,
    request_id: str | None = None,
) -> dict[str, Any]:
    """An HTTP API (payload 2.0) event from events/<name>.json with the parts a test changes.

    ``sub=None`` drops the authorizer's claims (no token); ``groups`` is rendered the way API
    Gateway renders a list claim (``"[a b]"``); ``path`` fills the route's parameters into the
    raw path, ``raw_path`` sets it verbatim; ``query`` replaces the query string (None: none);
    ``body`` is JSON-encoded unless it is a string (None: no body); a header set to None is removed.
    """
    event = load_event(name)
    context = event["requestContext"]
    if sub is None:
        context.pop("authorizer", None)
        event["headers"].pop("authorization", None)
    elif sub is not _KEEP:
        context["authorizer"]["jwt"]["claims"]["sub"] = sub
    if groups is not _KEEP and "authorizer" in context:
        claims = context["authorizer"]["jwt"]["claims"]
        claims["cognito:groups"] = "[" + " ".join(groups or []) + "]"
    if path is not None:
        parameters = {**event.get("pathParameters", {}), **path}
        raw_path = event["routeKey"].split(" ", 1)[1]
        for key, value in parameters.items():
            raw_path = raw_path.replace("{" + key + "}", urllib.parse.quote(value, safe=""))
        event["pathParameters"] = parameters
    if raw_path is not None:
        event["rawPath"] = raw_path
        context["http"]["path"] = raw_path
    if query is not _KEEP:
        event["rawQueryString"] = urllib.parse.urlencode(query or {})
        if query:
            event["queryStringParameters"] = dict(query)
        else:
            event.pop("queryStringParameters", None)
    if body is not _KEEP:
        if body is None:
            event.pop("body", None)
        else:
            event["body"] = body if isinstance(body, str) else json.dumps(body)
    for key, value in (headers or {}).items():
        event["headers"].pop(key.lower(), None)
        if value is not None:
            event["headers"][key.lower()] = value
    if request_id is not None:
        context["requestId"] = request_id
    return event


_LOADING = threading.Lock()


def load_handler(function_dir: str) -> ModuleType:
    """Import functions/<function_dir>/app.py as Lambda does, under a unique module name. Once per
    process, under a lock: moto runs executions' steps on threads of their own, and a module is in
    ``sys.modules`` before it has finished executing."""
    name = f"function_{function_dir}"
    with _LOADING:
        if name in sys.modules:
            return sys.modules[name]
        spec = importlib.util.spec_from_file_location(name, FUNCTIONS / function_dir / "app.py")
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[name]
            raise
        return module


@dataclass(frozen=True)
class Reply:
    """A handler's HTTP answer."""

    status: int
    headers: dict[str, str]
    text: str

    @property
    def json(self) -> Any:
        return json.loads(self.text)


def invoke(function_dir: str, event: dict[str, Any]) -> Reply:
    """Run functions/<function_dir>/app.py's handler on ``event`` as Lambda would."""
    result = load_handler(function_dir).handler(event, FakeContext())
    headers = result.get("headers") or {}
    return Reply(status=int(result["statusCode"]), headers=headers, text=result.get("body") or "")


class FakeContext:
    """The parts of LambdaContext that powertools reads."""

    function_name = "test-function"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:test-function"
    aws_request_id = "00000000-0000-0000-0000-000000000000"

    def get_remaining_time_in_millis(self) -> int:
        return 10_000


@dataclass(frozen=True)
class Stores:
    """The service's stores over one table, as the composition root builds them, for tests that
    arrange or inspect state directly; ``item``/``token_item`` read raw items (secrets included)."""

    table: Any
    connections: Any
    tokens: Any
    registry: Any
    audit: Any

    def item(self, connection_id: str) -> dict[str, Any] | None:
        from account_connections.adapters.dynamodb.keys import connection_key

        return self.table.get(connection_key(connection_id))  # type: ignore[no-any-return]

    def token_item(self, token_hash: str) -> dict[str, Any] | None:
        from account_connections.adapters.dynamodb.keys import token_key

        return self.table.get(token_key(token_hash))  # type: ignore[no-any-return]


def stores(table_name: str, dynamodb: Any) -> Stores:
    from account_connections.adapters.dynamodb.audit import DynamoAuditLog
    from account_connections.adapters.dynamodb.connections import DynamoConnections
    from account_connections.adapters.dynamodb.registry import DynamoRegistry
    from account_connections.adapters.dynamodb.table import Table
    from account_connections.adapters.dynamodb.tokens import DynamoTokens

    table = Table(table_name, dynamodb)
    return Stores(
        table, DynamoConnections(table), DynamoTokens(table), DynamoRegistry(table), DynamoAuditLog(table)
    )


# ---- the seed ----------------------------------------------------------------------------------

# What the seed's registry items carry as their last change: the seed's operator wrote them.
SEED_STAMP = {"updatedAt": "2026-11-01T00:00:00.000Z", "updatedBy": SEED.operator}


def put_seed(registry: Any) -> None:
    """``local.seed_data``'s spaces, members and accounts' administrators, written straight into
    a registry (the local stack writes the same through the operator API)."""
    from account_connections.domain.registry import Approver, Member, Space, SpaceRole

    for space in SEED.spaces:
        registry.put_space(Space(spaceId=space.space_id, name=space.name, **SEED_STAMP))
    for member in SEED.members:
        registry.put_member(
            Member(spaceId=member.space_id, userId=member.user_id, role=SpaceRole(member.role), **SEED_STAMP)
        )
    for approver in SEED.approvers:
        registry.put_approver(Approver(accountId=approver.account_id, **approver.policy(), **SEED_STAMP))
