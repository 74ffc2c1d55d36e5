"""Limits, read from the CloudFormation that SAM makes of template.yaml: every function has its own
reserved concurrency (the public ones their own, smaller, share), so that no route can take the
account's whole Lambda concurrency; the public /verify routes are throttled by API Gateway."""

from __future__ import annotations

from typing import Any

import pytest

from tests.checks.cfn import Resolver, translated
from tests.support import template

CFN = translated()
RESOURCES: dict[str, Any] = CFN["Resources"]
PARAMETERS: dict[str, Any] = CFN["Parameters"]
FUNCTIONS = sorted(k for k, v in RESOURCES.items() if v["Type"] == "AWS::Lambda::Function")
# Lambda keeps at least this much of the account's concurrency unreserved.
UNRESERVED_MINIMUM = 100
DEFAULT_ACCOUNT_QUOTA = 1000


def _public_routes() -> dict[str, set[str]]:
    """function -> the route keys it serves without a JWT (Authorizer: NONE)."""
    routes: dict[str, set[str]] = {}
    for logical_id, res in template()["Resources"].items():
        for event in res.get("Properties", {}).get("Events", {}).values():
            props = event["Properties"]
            if event["Type"] == "HttpApi" and props.get("Auth", {}).get("Authorizer") == "NONE":
                routes.setdefault(logical_id, set()).add(f"{props['Method'].upper()} {props['Path']}")
    return routes


PUBLIC = _public_routes()


def _reserved(function: str, **parameters: str) -> Any:
    resolver = Resolver(CFN)
    resolver.parameters.update(parameters)
    return resolver.resolve(RESOURCES[function]["Properties"].get("ReservedConcurrentExecutions"))


# Jobs that must run one at a time (the digests are one chain): a reservation of 1.
SINGLETONS = {"DigestFunction"}


@pytest.mark.parametrize("function", FUNCTIONS)
def test_each_function_has_its_reserved_concurrency(function: str) -> None:
    if function in SINGLETONS:
        assert _reserved(function) == 1, f"{function} runs one at a time"
    else:
        share = "PublicFunctionConcurrency" if function in PUBLIC else "FunctionConcurrency"
        assert _reserved(function) == PARAMETERS[share]["Default"], f"{function} should reserve {share}"
    assert _reserved(function, ReserveConcurrency="false") is None  # AWS::NoValue: an account too small


def test_the_reservations_fit_the_default_quota() -> None:
    total = sum(_reserved(function) for function in FUNCTIONS)
    assert total + UNRESERVED_MINIMUM <= DEFAULT_ACCOUNT_QUOTA, total
    # What the parameter's description tells an operator the account needs.
    assert f"({total + UNRESERVED_MINIMUM} by default)" in " ".join(
        PARAMETERS["ReserveConcurrency"]["Description"].split()
    )


def test_the_public_functions_are_the_decision_and_the_docs() -> None:
    assert PUBLIC == {
        "DecideConnectionFunction": {"GET /verify", "HEAD /verify", "POST /verify"},
        "ApiDocsFunction": {"GET /openapi.json", "GET /docs", "GET /docs/{asset}", "GET /health"},
    }


def test_every_verify_route_is_throttled() -> None:
    stages = [v for v in RESOURCES.values() if v["Type"] == "AWS::ApiGatewayV2::Stage"]
    assert len(stages) == 1
    settings = Resolver(CFN).resolve(stages[0]["Properties"]["RouteSettings"])
    rate = PARAMETERS["VerifyThrottlingRateLimit"]["Default"]
    burst = PARAMETERS["VerifyThrottlingBurstLimit"]["Default"]
    assert settings == {
        route: {"ThrottlingRateLimit": rate, "ThrottlingBurstLimit": burst}
        for route in PUBLIC["DecideConnectionFunction"]
    }
    # Sane defaults: a person deciding never meets them, a flood does.
    assert 1 <= rate <= burst <= 10 * rate <= 1000
