"""template.yaml as CloudFormation sees it, offline: the SAM translation (what `sam validate`
does, with the translator's own managed-policy list instead of a call to IAM), and a resolver
that turns intrinsic functions into the strings they would become in a known test account."""

from __future__ import annotations

import json
import os
import re
from functools import cache
from pathlib import Path
from typing import Any

import samtranslator
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator

from tests.support import ROOT, template

PARTITION, REGION, ACCOUNT = "aws", "us-east-1", "123456789012"
STACK = "account-connections"
PSEUDO = {
    "AWS::Partition": PARTITION,
    "AWS::Region": REGION,
    "AWS::AccountId": ACCOUNT,
    "AWS::StackName": STACK,
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::NoValue": None,
}


def _managed_policy_map() -> dict[str, str]:
    data = Path(samtranslator.__file__).parent / "internal" / "data" / "aws_managed_policies.json"
    return json.loads(data.read_text())[PARTITION]


@cache
def _translated() -> str:
    os.environ.setdefault("AWS_DEFAULT_REGION", REGION)
    sam = template()
    for logical_id, res in sam["Resources"].items():
        props = res.get("Properties", {})
        # Local paths become S3 objects, as `sam validate` and `sam package` do.
        if res["Type"] == "AWS::Serverless::Function":
            props["CodeUri"] = f"s3://artifacts/{logical_id}.zip"
        elif res["Type"] == "AWS::Serverless::LayerVersion":
            props["ContentUri"] = f"s3://artifacts/{logical_id}.zip"
        elif res["Type"] == "AWS::Serverless::StateMachine" and "DefinitionUri" in props:
            props["Definition"] = json.loads((ROOT / props.pop("DefinitionUri")).read_text())
    translated = Translator(managed_policy_map=None, sam_parser=Parser(), plugins=[]).translate(
        sam_template=sam, parameter_values={}, get_managed_policy_map=_managed_policy_map
    )
    return json.dumps(translated)


def translated() -> dict[str, Any]:
    """The CloudFormation template that SAM makes of template.yaml (a fresh copy each call)."""
    return json.loads(_translated())


class Resolver:
    """Evaluates intrinsic functions against the parameters' defaults, in account ``ACCOUNT``.

    Physical names are the logical ids, so a resolved ARN says which resource it names:
    ``Ref StateTable`` is ``StateTable``, ``Ref ApprovalTopic`` is
    ``arn:aws:sns:us-east-1:123456789012:ApprovalTopic``. An intrinsic it does not know raises
    ``ValueError``, so a check cannot pass by not understanding the template."""

    def __init__(self, cfn: dict[str, Any]) -> None:
        self.resources: dict[str, Any] = cfn["Resources"]
        self.parameters = {name: p.get("Default") for name, p in cfn.get("Parameters", {}).items()}
        self.conditions: dict[str, Any] = cfn.get("Conditions", {})

    def ref(self, name: str) -> Any:
        if name in PSEUDO:
            return PSEUDO[name]
        if name in self.parameters:
            return self.parameters[name]
        kind = self.resources[name]["Type"]
        arn_of = {
            "AWS::SNS::Topic": self._arn,
            "AWS::StepFunctions::StateMachine": self._arn,
            "AWS::Lambda::LayerVersion": self._arn,
        }
        return arn_of[kind](name) if kind in arn_of else name

    def get_att(self, name: str, attribute: str) -> Any:
        kind = self.resources[name]["Type"]
        if attribute == "Arn":
            return self._arn(name)
        named = {("AWS::SNS::Topic", "TopicName"), ("AWS::StepFunctions::StateMachine", "Name")}
        if (kind, attribute) in named:
            return self._physical_name(name)
        raise ValueError(f"unknown attribute {name}.{attribute}")

    def _arn(self, name: str) -> str:
        kind = self.resources[name]["Type"]
        pattern = {
            "AWS::DynamoDB::Table": "arn:{p}:dynamodb:{r}:{a}:table/{n}",
            "AWS::SNS::Topic": "arn:{p}:sns:{r}:{a}:{n}",
            "AWS::StepFunctions::StateMachine": "arn:{p}:states:{r}:{a}:stateMachine:{n}",
            "AWS::Lambda::Function": "arn:{p}:lambda:{r}:{a}:function:{n}",
            "AWS::Lambda::LayerVersion": "arn:{p}:lambda:{r}:{a}:layer:{n}:1",
            "AWS::IAM::Role": "arn:{p}:iam::{a}:role/{n}",
            "AWS::Logs::LogGroup": "arn:{p}:logs:{r}:{a}:log-group:{n}:*",
            "AWS::Cognito::UserPool": "arn:{p}:cognito-idp:{r}:{a}:userpool/{n}",
            "AWS::CloudWatch::Alarm": "arn:{p}:cloudwatch:{r}:{a}:alarm:{n}",
            "AWS::KMS::Key": "arn:{p}:kms:{r}:{a}:key/{n}",
        }.get(kind)
        if pattern is None:
            raise ValueError(f"no ARN known for {name} ({kind})")
        return pattern.format(p=PARTITION, r=REGION, a=ACCOUNT, n=self._physical_name(name))

    def _physical_name(self, name: str) -> str:
        """The name a resource is created with: the one its properties give, else its logical id
        (which stands for the name CloudFormation would generate)."""
        given = {"AWS::StepFunctions::StateMachine": "StateMachineName"}.get(self.resources[name]["Type"])
        named = self.resources[name].get("Properties", {}).get(given) if given else None
        return str(self.resolve(named)) if named else name

    def condition(self, name: str) -> bool:
        return bool(self.resolve(self.conditions[name]))

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) != 1 or not next(iter(value)).startswith(("Fn::", "Ref", "Condition")):
            return {k: self.resolve(v) for k, v in value.items()}
        ((fn, arg),) = value.items()
        if fn == "Ref":
            return self.ref(arg)
        if fn == "Fn::GetAtt":
            name, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
            return self.get_att(name, attribute)
        if fn == "Fn::Sub":
            text, variables = (arg, {}) if isinstance(arg, str) else arg
            return self._sub(text, {k: self.resolve(v) for k, v in variables.items()})
        if fn == "Fn::Join":
            separator, items = arg
            return separator.join(str(i) for i in self.resolve(items))
        if fn == "Fn::If":
            name, when_true, when_false = arg
            return self.resolve(when_true if self.condition(name) else when_false)
        if fn == "Fn::Equals":
            left, right = self.resolve(arg)
            return left == right
        if fn == "Fn::Not":
            return not self.resolve(arg[0])
        if fn == "Fn::Or":
            return any(self.resolve(item) for item in arg)
        if fn == "Fn::And":
            return all(self.resolve(item) for item in arg)
        if fn == "Fn::EachMemberEquals":  # a rule function (Rules: Assertions)
            members, value = self.resolve(arg)
            return all(member == value for member in members)
        if fn == "Condition":
            return self.condition(arg)
        raise ValueError(f"unknown intrinsic function {fn}")

    def _sub(self, text: str, variables: dict[str, Any]) -> str:
        def one(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return str(variables[name])
            if "." in name and name.split(".", 1)[0] in self.resources:
                return str(self.get_att(*name.split(".", 1)))
            return str(self.ref(name))

        return re.sub(r"\$\{([^}]+)\}", one, text)
