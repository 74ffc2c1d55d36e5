"""An IaC security scanner over template.yaml and the templates account administrators deploy:
checkov, pinned exactly in requirements-checkov.txt and installed by `make venv` into its own venv
($(VENV)/checkov: it pins boto3, botocore and pydantic of its own).

Every finding is fixed in the template or suppressed on its own resource with checkov's metadata
(``Metadata: checkov: skip: - id: ... comment: <why>``); nothing is skipped wholesale (no
--skip-check, no checkov config file), and no suppression outlives the finding it answers.
docs/architecture.md ("Security decisions") says why each suppression is acceptable."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

from samcli.yamlhelper import yaml_parse

from tests.checks.tools import offline_env
from tests.support import ROOT

CHECKOV = Path(sys.executable).parent.parent / "checkov" / "bin" / "checkov"
TEMPLATES = [ROOT / "template.yaml", *sorted((ROOT / "templates").glob("*.yaml"))]
MIN_REASON = 40  # characters: a sentence a reviewer can accept, not "n/a"


def _run(paths: list[Path], cwd: Path) -> dict[str, Any]:
    """checkov's JSON report for ``paths`` (CloudFormation and SAM), with no configuration but
    its defaults: no checkov variables in the environment, no config file in the home folder."""
    assert CHECKOV.exists(), f"{CHECKOV} is missing: run `make venv`"
    env = {k: v for k, v in offline_env().items() if not k.startswith(("CKV_", "BC_", "PRISMA_"))}
    with tempfile.TemporaryDirectory() as home:
        env["HOME"] = home
        args = [str(CHECKOV), "--framework", "cloudformation", "--output", "json", "--skip-download"]
        for path in paths:
            args += ["--file", str(path)]
        result = subprocess.run(
            args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False
        )
    # 0: no failed check, 1: some failed; anything else is checkov failing to run.
    assert result.returncode in (0, 1), f"checkov exited {result.returncode}:\n{result.stderr[-3000:]}"
    report = json.loads(result.stdout)
    assert isinstance(report, dict) and report.get("check_type") == "cloudformation", result.stdout[:2000]
    return report


@cache
def _report() -> dict[str, Any]:
    return _run(TEMPLATES, ROOT)


def _results(report: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return list(report["results"].get(kind, []))


def _describe(check: dict[str, Any]) -> str:
    lines = check.get("file_line_range") or ["?", "?"]
    where = f"{Path(check['file_path']).name}:{lines[0]}-{lines[1]}"
    return f"{check['check_id']} {check['resource']} ({where}): {check['check_name']}"


def test_checkov_passes_every_template() -> None:
    failed = _results(_report(), "failed_checks")
    assert not failed, (
        f"checkov: {len(failed)} failed checks (fix each, or suppress it on its resource):\n"
        + ("\n".join(_describe(check) for check in failed))
    )


def test_every_template_is_scanned() -> None:
    report = _report()
    assert not _results(report, "parsing_errors"), report["results"]["parsing_errors"]
    checks = (
        _results(report, "passed_checks")
        + _results(report, "failed_checks")
        + _results(report, "skipped_checks")
    )
    scanned = {Path(check["file_path"]).name for check in checks}
    assert scanned == {path.name for path in TEMPLATES}


def test_every_suppression_names_its_reason() -> None:
    skipped = _results(_report(), "skipped_checks")
    vague = [
        _describe(check)
        for check in skipped
        if len((check["check_result"].get("suppress_comment") or "").strip()) < MIN_REASON
    ]
    assert not vague, "suppressions without a reason a reviewer can accept:\n" + "\n".join(vague)


def _key(check: dict[str, Any]) -> tuple[str, str, str]:
    return Path(check["file_path"]).stem, check["check_id"], check["resource"]


def _without_suppressions(source: Path, target: Path) -> None:
    doc = yaml_parse(source.read_text())
    for resource in doc.get("Resources", {}).values():
        metadata = resource.get("Metadata", {})
        metadata.pop("checkov", None)
        if not metadata:
            resource.pop("Metadata", None)
    target.write_text(json.dumps(doc, indent=1))


def test_each_suppression_answers_a_finding() -> None:
    """The templates without their checkov metadata fail every check that is suppressed: a
    suppression whose finding was fixed is removed, not left to hide a future one."""
    with tempfile.TemporaryDirectory() as folder:
        copies = []
        for path in TEMPLATES:
            copy = Path(folder) / f"{path.stem}.json"
            _without_suppressions(path, copy)
            copies.append(copy)
        bare = _run(copies, Path(folder))
    suppressed = {_key(check) for check in _results(_report(), "skipped_checks")}
    found = {_key(check) for check in _results(bare, "failed_checks")}
    stale = sorted(suppressed - found)
    assert not stale, f"suppressions that no longer answer a finding (remove them): {stale}"


def test_nothing_is_skipped_wholesale() -> None:
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    configs = [name for name in tracked.splitlines() if Path(name).name in (".checkov.yaml", ".checkov.yml")]
    assert not configs, f"checkov configuration files skip checks for every resource: {configs}"
    makefile = (ROOT / "Makefile").read_text()
    assert "--skip-check" not in makefile and "CKV_SKIP_CHECK" not in makefile
