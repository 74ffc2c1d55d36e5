"""What the local stack knows about the deployed template: its functions, its routes and their
JWT authorizers, the physical ids and outputs moto gave it, and a client for moto.

``local.deploy`` fills a ``DeployedStack``; the front, the Lambda runtime, the emulated types,
the start-up check and the seed read it. Nothing here deploys anything, so every module of
the local stack may import this one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from local.moto_server import DUMMY_CREDENTIALS
from local.template import REGION, TranslatedTemplate

STACK_NAME = "account-connections"

_boto3_client: Any = boto3.client  # typed per service name; ours come as plain strings


def aws_client(service: str, endpoint: str) -> Any:
    """A boto3 client for moto with the local stack's dummy credentials."""
    return _boto3_client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        config=Config(retries={"max_attempts": 2}, read_timeout=60),
    )


@dataclass(frozen=True)
class FunctionSpec:
    """A deployed function, as the runtime needs it: its code, handler and environment."""

    logical_id: str
    name: str
    arn: str
    handler: str
    code_dir: Path
    layer_dirs: tuple[Path, ...]
    environment: dict[str, str]
    timeout: int
    memory_size: int


@dataclass(frozen=True)
class JwtAuthorizerConfig:
    issuer: str
    audience: tuple[str, ...]
    identity_source: str


@dataclass(frozen=True)
class Route:
    """An HTTP API route: ``method`` and ``path`` (with ``{name}`` parameters), its function,
    and the JWT authorizer that guards it (``None`` for ``Authorizer: NONE``)."""

    method: str
    path: str
    function_arn: str
    payload_format_version: str
    authorizer: JwtAuthorizerConfig | None

    @property
    def route_key(self) -> str:
        return f"{self.method} {self.path}"


@dataclass
class DeployedStack:
    """What the front, the runtime and the seed need to know about the deployed template."""

    template: TranslatedTemplate
    endpoint: str
    parameters: dict[str, str]
    physical_ids: dict[str, str] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    conditions: dict[str, bool] = field(default_factory=dict)
    functions: dict[str, FunctionSpec] = field(default_factory=dict)
    routes: list[Route] = field(default_factory=list)
    api_ids: dict[str, str] = field(default_factory=dict)
    layer_arns: dict[str, str] = field(default_factory=dict)

    def client(self, service: str) -> Any:
        return aws_client(service, self.endpoint)

    def parameter(self, name: str) -> str:
        """The value a template parameter was deployed with (given, else its default)."""
        if name in self.parameters:
            return self.parameters[name]
        return str(self.template.sam["Parameters"][name].get("Default", ""))

    def literal(self, value: Any) -> Any:
        """``value`` itself, or the value the parameter it refers to (``Ref``) was deployed with;
        raises ``ValueError`` for any other intrinsic function (only the deploy resolves those)."""
        if isinstance(value, dict) and len(value) == 1:
            ((function, argument),) = value.items()
            if function == "Ref" and argument in self.template.sam.get("Parameters", {}):
                return self.parameter(argument)
            if function == "Ref" or function.startswith("Fn::"):
                raise ValueError(f"{function} {argument!r} is not resolved before the deploy")
        return value

    def declared(self, logical_id: str) -> bool:
        """Whether the resource is created with these parameters (its Condition holds)."""
        condition = self.template.cfn["Resources"][logical_id].get("Condition")
        return condition is None or self.conditions[condition]

    def function_by_arn(self, arn: str) -> FunctionSpec:
        name = arn.split(":")[6] if arn.startswith("arn:") else arn
        for spec in self.functions.values():
            if spec.name == name:
                return spec
        raise KeyError(f"no function {arn} in the stack")
