"""The linters CloudFormation users run: `sam validate --lint` on the SAM template and cfn-lint on
it and on every template an account administrator deploys (templates/)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.checks.tools import run
from tests.support import ROOT

ADMIN_TEMPLATES = sorted((ROOT / "templates").glob("*.yaml"))


def test_sam_validate_lint() -> None:
    result = run(["sam", "validate", "--lint", "--template-file", str(ROOT / "template.yaml")], timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "is a valid SAM Template" in result.stdout + result.stderr


@pytest.mark.parametrize("path", [ROOT / "template.yaml", *ADMIN_TEMPLATES], ids=lambda p: p.name)
def test_cfn_lint(path: Path) -> None:
    result = run(["cfn-lint", "--", str(path)], timeout=120)
    assert result.returncode == 0, f"cfn-lint {path.name}:\n{result.stdout}{result.stderr}"


def test_administrator_templates_exist() -> None:
    assert {p.name for p in ADMIN_TEMPLATES} >= {"verifier-role.yaml", "example-build-role.yaml"}
