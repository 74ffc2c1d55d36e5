"""template.yaml, translated from SAM to CloudFormation offline, ready for moto's CloudFormation.

The translation is the one ``sam deploy`` asks CloudFormation to do, made here with
aws-sam-translator and the managed-policy list it ships, so no AWS call is needed. Before it,
local paths are replaced as ``sam package`` would: ``CodeUri``/``ContentUri`` become S3 objects
(which the deployer uploads into moto) and ``DefinitionUri`` is read into ``Definition``.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from samcli.yamlhelper import yaml_parse
from samtranslator.internal.managed_policies import get_bundled_managed_policy_map
from samtranslator.metrics.metrics import DummyMetricsPublisher, Metrics
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template.yaml"
ARTIFACT_BUCKET = "local-stack-artifacts"
REGION = "us-east-1"

_CODE_PROPERTY = {
    "AWS::Serverless::Function": "CodeUri",
    "AWS::Serverless::LayerVersion": "ContentUri",
}


@dataclass(frozen=True)
class Artifact:
    """A local folder that the template names, and the S3 object it is packaged to."""

    logical_id: str
    path: Path
    key: str


@dataclass
class TranslatedTemplate:
    """The CloudFormation template, and what the translation replaced on the way."""

    sam: dict[str, Any]
    cfn: dict[str, Any]
    artifacts: dict[str, Artifact] = field(default_factory=dict)

    def resources(self, resource_type: str | None = None) -> dict[str, dict[str, Any]]:
        return {
            logical_id: resource
            for logical_id, resource in self.cfn["Resources"].items()
            if resource_type is None or resource["Type"] == resource_type
        }

    def code_dir(self, logical_id: str) -> Path:
        """The folder a function's or layer's code comes from (its CodeUri/ContentUri)."""
        return self.artifacts[logical_id].path

    def function_layers(self, logical_id: str) -> list[str]:
        """Logical ids of the layers a function declares (``Ref`` entries of its ``Layers``)."""
        layers = self.cfn["Resources"][logical_id]["Properties"].get("Layers", [])
        names = [layer["Ref"] for layer in layers if isinstance(layer, dict) and "Ref" in layer]
        return [self.layer_logical_id(name) for name in names]

    def layer_logical_id(self, versioned_id: str) -> str:
        """SAM renames a layer ``<LogicalId><hash>``: map it back to the template's id."""
        for logical_id in self.artifacts:
            if versioned_id.startswith(logical_id) and logical_id in self.sam["Resources"]:
                if self.sam["Resources"][logical_id]["Type"] == "AWS::Serverless::LayerVersion":
                    return logical_id
        raise KeyError(f"no layer in template.yaml for {versioned_id}")


def load_sam(path: Path = TEMPLATE) -> dict[str, Any]:
    """template.yaml with the ``!Ref``/``!GetAtt`` short forms, as SAM CLI reads it."""
    return yaml_parse(path.read_text())


def package(sam: dict[str, Any], base: Path) -> tuple[dict[str, Any], dict[str, Artifact]]:
    """Replace local paths as ``sam package`` does. Returns the new template and the artifacts."""
    packaged = copy.deepcopy(sam)
    artifacts: dict[str, Artifact] = {}
    for logical_id, resource in packaged["Resources"].items():
        props = resource.setdefault("Properties", {})
        prop = _CODE_PROPERTY.get(resource["Type"])
        if prop and isinstance(props.get(prop), str) and not props[prop].startswith("s3://"):
            key = f"{logical_id}.zip"
            artifacts[logical_id] = Artifact(logical_id, (base / props[prop]).resolve(), key)
            props[prop] = f"s3://{ARTIFACT_BUCKET}/{key}"
        if resource["Type"] == "AWS::Serverless::StateMachine" and isinstance(
            props.get("DefinitionUri"), str
        ):
            props["Definition"] = json.loads((base / props.pop("DefinitionUri")).read_text())
    return packaged, artifacts


class ParameterError(ValueError):
    """A parameter value that CloudFormation would refuse."""


def check_parameters(sam: dict[str, Any], values: dict[str, str]) -> None:
    """Refuse what CloudFormation refuses (moto does not check): unknown parameters, values
    outside ``MinValue``/``MaxValue``, ``AllowedValues`` or ``AllowedPattern``."""
    declared = sam.get("Parameters", {})
    for name, value in values.items():
        if name not in declared:
            raise ParameterError(f"template.yaml has no parameter {name}")
        spec = declared[name]
        if spec.get("Type") == "Number":
            try:
                number = float(value)
            except ValueError:
                raise ParameterError(f"{name} must be a number, not {value!r}") from None
            low, high = spec.get("MinValue"), spec.get("MaxValue")
            if (low is not None and number < float(low)) or (high is not None and number > float(high)):
                raise ParameterError(f"{name} must be between {low} and {high} (template.yaml), not {value}")
        if "AllowedValues" in spec and value not in [str(allowed) for allowed in spec["AllowedValues"]]:
            raise ParameterError(f"{name} must be one of {spec['AllowedValues']}, not {value!r}")
        if "AllowedPattern" in spec and not re.fullmatch(spec["AllowedPattern"], value):
            raise ParameterError(f"{name} must match {spec['AllowedPattern']}, not {value!r}")


def translate(parameters: dict[str, str], path: Path = TEMPLATE) -> TranslatedTemplate:
    """Translate template.yaml to CloudFormation with these parameter values (strings)."""
    sam = load_sam(path)
    check_parameters(sam, parameters)
    packaged, artifacts = package(sam, path.parent)
    # The session only names the region (pseudo parameters); the translator makes no AWS call.
    session = boto3.session.Session(region_name=REGION)
    # The translator records usage metrics; publishing them to the dummy publisher drops them
    # (otherwise it warns about them when it is garbage collected).
    metrics = Metrics("ServerlessTransform", DummyMetricsPublisher())
    translator = Translator(
        get_bundled_managed_policy_map("aws"), Parser(), boto_session=session, metrics=metrics
    )
    cfn = translator.translate(packaged, parameter_values=dict(parameters))
    metrics.publish()
    return TranslatedTemplate(sam=sam, cfn=cfn, artifacts=artifacts)
