"""No import cycles among the modules of ``local/`` and ``bench/``: a module of one of them imports
another of them, directly or through a chain, only if that one does not import it back. Every
import counts, also those inside functions and under ``TYPE_CHECKING``: a cycle hidden by a lazy
import is still a cycle. And the seed's data (``local.seed_data``), which tests read too, loads
no AWS library."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from tests.support import ROOT

PACKAGES = ("local", "bench")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_names(path: Path) -> set[str]:
    """What the module at ``path`` imports, as absolute dotted names: ``import a.b`` gives a.b,
    ``from a import b`` gives a.b (b may be a module, else it is a name in a)."""
    name = module_name(path)
    names = set()
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
    paths = {module_name(path): path for package in PACKAGES for path in (ROOT / package).rglob("*.py")}
    graph = {}
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
    assert {"local", "local.stack", "local.deploy", "bench", "bench.load"} <= set(graph)
    assert "local.deploy" in graph["local.stack"]


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
