"""Fuzzing the whole HTTP API with schemathesis, from the service's own ``GET /openapi.json``.

A stack of its own (the fuzz changes state: spaces, members, approvers, connections) serves the
document; schemathesis generates requests for every operation in it, valid and invalid (its
examples, coverage and fuzzing phases), and checks each answer against the document. Each
identity in turn: a requester (alice), an operator (oscar), an auditor (audrey), and none.

The checks: no 5xx, every status code, content type, header and body as documented, invalid
input refused, a secured operation refused without its token (or with a made-up one), and a
method no route declares answered ``404`` as API Gateway does (the spec's rule, in place of
schemathesis' ``unsupported_method``, which wants ``405``). Not ``positive_data_acceptance``:
the document cannot say everything the code refuses (opaque ``nextToken`` values, characters
that the input rules forbid), so schema-valid input may rightly get ``400``.

Bounded and reproducible: a fixed seed, derandomized generation, no shrinking, no example
database, a few fuzzing examples per operation. A failure prints the request that reproduces
it (a curl command, with the token it sent) and what the document said.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import Case, CheckContext, Response
from schemathesis.config import SchemathesisConfig
from schemathesis.schemas import BaseSchema

from local.process import StackProcess
from tests.e2e.client import StackClient

pytestmark = pytest.mark.e2e

SEED = 20260515
MAX_EXAMPLES = 30  # per operation and identity, for the fuzzing phase (the coverage phase is fixed)
# Each identity the API knows (local/seed_data.py), and none.
IDENTITIES = {"requester": "alice", "operator": "oscar", "auditor": "audrey", "anonymous": None}
CHECKS: dict[str, dict[str, Any]] = {
    "not_a_server_error": {},
    "status_code_conformance": {},
    "content_type_conformance": {},
    "response_schema_conformance": {},
    "response_headers_conformance": {},
    "negative_data_rejection": {},
    "missing_required_header": {},
    "ignored_auth": {},
}


# The seed's names (local/seed_data.py), drawn now and then instead of generated ones, so that the
# fuzz also reaches what exists: a space with members, an account with an administrator, its roles.
SEEDED = {
    "spaces": (["demo"], ["path.spaceId", "query.spaceId"]),
    "accounts": (["111122223333", "444455556666"], ["path.accountId", "query.accountId", "body.accountId"]),
    "users": (["alice", "bob", "carol", "audrey", "oscar"], ["path.userId", "query.actor"]),
    "roles": (["BuildRole", "UntrustedRole"], ["path.roleName"]),
    "role_arns": (
        ["arn:aws:iam::111122223333:role/BuildRole", "arn:aws:iam::111122223333:role/UntrustedRole"],
        ["body.roleArn", "body.roleArns[*]"],
    ),
}
SEEDED_PROBABILITY = 0.5


@pytest.fixture(scope="module")
def fuzz_stack() -> Iterator[StackProcess]:
    """Not the session's stack: what the fuzz creates, changes and deletes stays on this one."""
    with StackProcess() as running:
        yield running


def fuzz_config(token: str | None) -> SchemathesisConfig:
    generation = {
        "mode": "all",
        "max-examples": MAX_EXAMPLES,
        "no-shrink": True,
        "deterministic": True,
        "database": "none",
    }
    config: dict[str, Any] = {
        "seed": SEED,
        "generation": generation,
        "checks": {"enabled": False, **{name: {"enabled": True, **extra} for name, extra in CHECKS.items()}},
        "phases": {
            "examples": {"enabled": True},
            "coverage": {"enabled": True},
            "fuzzing": {"enabled": True},
            "stateful": {"enabled": False},
        },
        "dictionaries": {name: {"values": values} for name, (values, _) in SEEDED.items()},
        "parameters": {
            key: {"dictionary": name, "probability": SEEDED_PROBABILITY}
            for name, (_, keys) in SEEDED.items()
            for key in keys
        },
        "request-timeout": 60,
        # The reproduction must be the request as sent: its tokens are the local stack's own.
        "output": {"sanitization": {"enabled": False}},
    }
    if token is not None:
        config["auth"] = {"openapi": {"bearerAuth": {"bearer": token}}}
    return SchemathesisConfig.from_dict(config)


@pytest.fixture(scope="module", params=list(IDENTITIES), ids=list(IDENTITIES))
def fuzzed_api(request: pytest.FixtureRequest, fuzz_stack: StackProcess) -> BaseSchema:
    user = IDENTITIES[request.param]
    token = StackClient(fuzz_stack.url).token(user) if user is not None else None
    return schemathesis.openapi.from_url(f"{fuzz_stack.url}/openapi.json", config=fuzz_config(token))


@pytest.fixture(autouse=True)
def _node_id_for_schemathesis(request: pytest.FixtureRequest) -> None:
    # schemathesis 4.32.5's lazy loader reads (and relabels) ``request.node._nodeid``, which pytest 9
    # no longer has (it keeps a structured ``_id``): give it the attribute it reads. Labels only.
    request.node._nodeid = request.node.nodeid


def unrouted_method_is_not_found(ctx: CheckContext, response: Response, case: Case) -> None:
    """The spec's rule for a method no route declares (schemathesis' own ``unsupported_method``
    wants 405 with ``Allow``): API Gateway answers ``404``, with or without an identity."""
    method = str(response.request.method).upper()
    declared = {name.upper() for name in case.operation.schema.raw_schema["paths"][case.operation.path]}
    if method not in declared and response.status_code != 404:
        raise AssertionError(
            f"{method} is not routed on {case.operation.path}: expected 404, got {response.status_code}"
        )


schema = schemathesis.pytest.from_fixture("fuzzed_api")


@schema.parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck))
def test_every_answer_is_the_documented_one(case: Case) -> None:
    case.call_and_validate(additional_checks=[unrouted_method_is_not_found])
