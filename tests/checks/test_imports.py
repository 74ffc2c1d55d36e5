"""The import rules of the code we wrote (docs/architecture.md, "The shared package").

- No import cycles anywhere (the shared package, ``functions/``, ``local/``, ``bench/``,
  ``tests/``, ``cli/``): a module imports another, directly or through a chain, only if that one
  does not import it back. Every import counts, also those inside functions and under
  ``TYPE_CHECKING``: a cycle hidden by a lazy import is still a cycle.
- In the shared package, only ``adapters/`` imports boto3 or botocore; ``domain/`` imports only
  itself, pydantic and the standard library; ``ports.py`` only the domain; ``logic/`` never an
  adapter, the composition root, a route or a step; and nothing in it imports the code around it.
- ``local/`` imports neither ``bench/`` nor ``tests/``; the seed's data (``local.seed_data``),
  which tests read too, loads no AWS library."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from tests.support import ROOT

LAYER = ROOT / "layers" / "shared"
SHARED = "account_connections"
# Each package and the folder its dotted names start from.
PACKAGES = {
    "local": ROOT,
    "bench": ROOT,
    "tests": ROOT,
    "functions": ROOT,
    "cli": ROOT / "cli",
    SHARED: LAYER,
}
STDLIB = sys.stdlib_module_names


def _root_of(path: Path) -> Path:
    return (
        LAYER if path.is_relative_to(LAYER) else ROOT / "cli" if path.is_relative_to(ROOT / "cli") else ROOT
    )


def module_name(path: Path) -> str:
    parts = path.relative_to(_root_of(path)).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_paths() -> dict[str, Path]:
    """Every module of PACKAGES by its dotted name (the cli's tests and build output excluded)."""
    found = {}
    for package, root in PACKAGES.items():
        folder = root / package if package != "cli" else root
        for path in folder.rglob("*.py"):
            if ".aws-sam" in path.parts or "build" in path.relative_to(root).parts:
                continue
            if package == "cli" and not path.relative_to(root).parts[0].startswith("acctconn"):
                continue
            found[module_name(path)] = path
    return found


def imported_names(path: Path) -> set[str]:
    """What the module at ``path`` imports, as absolute dotted names: ``import a.b`` gives a.b,
    ``from a import b`` gives a.b (b may be a module, else it is a name in a)."""
    name = module_name(path)
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = name if path.name == "__init__.py" else name.rpartition(".")[0]
                for _ in range(node.level - 1):
                    package = package.rpartition(".")[0]
                base = f"{package}.{base}" if base else package
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def import_graph() -> dict[str, set[str]]:
    """Each module of PACKAGES, with the modules of PACKAGES it imports."""
    paths = package_paths()
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        graph[name] = set()
        for target in imported_names(path):
            while target and target not in paths:  # a.b.Name -> a.b, the module that holds it
                target = target.rpartition(".")[0]
            if target and target != name:
                graph[name].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle through each module that is on one (as ``a -> b -> a``), shortest first."""
    found: dict[frozenset[str], list[str]] = {}
    for start in sorted(graph):
        # Breadth first from ``start``: the shortest way back to it.
        paths = {start: [start]}
        queue = [start]
        while queue:
            current = queue.pop(0)
            for following in sorted(graph[current]):
                if following == start:
                    cycle = paths[current] + [start]
                    found.setdefault(frozenset(cycle), cycle)
                    queue = []
                    break
                if following not in paths:
                    paths[following] = paths[current] + [following]
                    queue.append(following)
    return sorted(found.values(), key=lambda cycle: (len(cycle), cycle))


def test_the_graph_sees_the_packages() -> None:
    graph = import_graph()
    assert {"local", "local.stack", "local.deploy", "bench", "bench.load", "tests.support"} <= set(graph)
    assert {"account_connections.wiring", "account_connections.logic.approval"} <= set(graph)
    assert "local.deploy" in graph["local.stack"]
    assert "account_connections.ports" in graph["account_connections.logic.approval"]


def _shared_imports() -> dict[str, set[str]]:
    """Each module of the shared package with every top-level name it imports (``boto3``,
    ``pydantic``...) and every module of the package it imports."""
    paths = {name: path for name, path in package_paths().items() if name.split(".")[0] == SHARED}
    imports: dict[str, set[str]] = {}
    for name, path in paths.items():
        imports[name] = set()
        for target in imported_names(path):
            if target.split(".")[0] != SHARED:
                imports[name].add(target.split(".")[0])
                continue
            while target and target not in paths:
                target = target.rpartition(".")[0]
            imports[name].add(target)
    return imports


def _breaking(rule: dict[str, set[str]]) -> list[str]:
    return sorted(f"{module} imports {', '.join(sorted(names))}" for module, names in rule.items() if names)


def test_only_adapters_import_boto3_or_botocore() -> None:
    found = {
        module: names & {"boto3", "botocore", "mypy_boto3_dynamodb"}
        for module, names in _shared_imports().items()
        if not module.startswith(f"{SHARED}.adapters")
    }
    assert not _breaking(found), _breaking(found)


def test_the_domain_is_pure() -> None:
    allowed_outside = {"pydantic", "__future__"} | STDLIB
    found = {
        module: {
            name for name in names if not name.startswith(f"{SHARED}.domain") and name not in allowed_outside
        }
        for module, names in _shared_imports().items()
        if module.startswith(f"{SHARED}.domain") or module == f"{SHARED}.ports"
    }
    assert not _breaking(found), _breaking(found)


def test_logic_takes_ports_and_never_builds_adapters() -> None:
    layers = ("adapters", "wiring", "api", "steps")
    forbidden = tuple(f"{SHARED}.{part}" for part in layers) + ("boto3", "botocore")
    found = {
        module: {name for name in names if name.startswith(forbidden)}
        for module, names in _shared_imports().items()
        if module.startswith(f"{SHARED}.logic")
    }
    assert not _breaking(found), _breaking(found)


def test_the_shared_package_imports_none_of_the_code_around_it() -> None:
    found = {
        module: names & {"functions", "local", "bench", "tests", "acctconn"}
        for module, names in _shared_imports().items()
    }
    assert not _breaking(found), _breaking(found)


def test_the_rules_see_a_breach() -> None:
    assert _breaking({"account_connections.logic.x": {"account_connections.adapters.sns"}, "y": set()}) == [
        "account_connections.logic.x imports account_connections.adapters.sns"
    ]


def test_a_cycle_is_found() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c", "a"]]


def test_no_import_cycles() -> None:
    found = cycles(import_graph())
    assert not found, "import cycles:\n" + "\n".join(" -> ".join(cycle) for cycle in found)


def test_local_imports_neither_bench_nor_tests() -> None:
    """What local/__init__.py says: the local stack serves the benchmarks and the tests, not the
    other way round."""
    found = {
        f"{path.relative_to(ROOT)}: {target}"
        for path in (ROOT / "local").rglob("*.py")
        for target in imported_names(path)
        if target.split(".")[0] in ("bench", "tests")
    }
    assert not found, sorted(found)


def test_the_seed_data_imports_no_aws_library() -> None:
    script = (
        "import sys, local.seed_data; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'boto3', 'botocore', 'moto'}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]", result.stdout
