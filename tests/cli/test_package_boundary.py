"""The service never imports the CLI: the Lambda packages (layers/, functions/) ship without it."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.support import ROOT


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_no_service_code_imports_acctconn() -> None:
    sources = [path for folder in ("layers", "functions") for path in sorted((ROOT / folder).rglob("*.py"))]
    assert sources, "no service sources found"
    offenders = [
        str(path.relative_to(ROOT))
        for path in sources
        if any(name == "acctconn" or name.startswith("acctconn.") for name in imported_modules(path))
    ]
    assert offenders == []


def test_the_cli_does_not_import_the_service() -> None:
    # acctconn audit verify reimplements docs/audit.md: importing the service's chain code would
    # make the check agree with the service by construction.
    sources = sorted((ROOT / "cli" / "acctconn").rglob("*.py"))
    assert sources, "no CLI sources found"
    offenders = [
        str(path.relative_to(ROOT))
        for path in sources
        if any(
            name.split(".")[0] in ("account_connections", "functions", "local")
            for name in imported_modules(path)
        )
    ]
    assert offenders == []
