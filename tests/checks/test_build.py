"""`sam build` with the Lambda runtime's Python: the layer holds the shared package and exactly
the pinned requirements, built for the functions' architecture, and each function its handler.

The build goes to its own folder with its dependency cache, .aws-sam/checks/ (ignored by git),
so only the first run, or a change of requirements, downloads from PyPI."""

from __future__ import annotations

import fcntl
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.checks.tools import lambda_python, offline_env, run
from tests.support import ROOT, template

pytestmark = pytest.mark.build

RESOURCES = template()["Resources"]
FUNCTIONS = sorted(k for k, v in RESOURCES.items() if v["Type"] == "AWS::Serverless::Function")
LAYER_SOURCE = ROOT / "layers" / "shared"
ARCHITECTURE = {"arm64": "aarch64", "x86_64": "x86_64"}[template()["Globals"]["Function"]["Architectures"][0]]


@pytest.fixture(scope="module")
def build_dir() -> Iterator[Path]:
    python = lambda_python()
    if python is None:
        pytest.fail(
            "sam build needs Python 3.12 (the Lambda runtime) on PATH or under `pyenv root`/versions/"
            "3.12*; install it (e.g. `pyenv install 3.12`) and run again"
        )
    # Not .aws-sam/build (what `make build` and `sam deploy` use). sam keeps its build graph beside
    # the build folder and cached dependencies in ./.aws-sam/deps of its working folder, so both
    # live in `work` and a second run downloads nothing.
    work = ROOT / ".aws-sam" / "checks"
    work.mkdir(parents=True, exist_ok=True)
    env = offline_env(PATH=f"{python.parent}{os.pathsep}{os.environ['PATH']}")
    with (work / "lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two test runs at once would build into the same folder
        result = run(
            [
                "sam",
                "build",
                "--template-file",
                str(ROOT / "template.yaml"),
                "--build-dir",
                str(work / "build"),
                "--cached",
                "--cache-dir",
                str(work / "cache"),
                "--parallel",
            ],
            cwd=work,
            env=env,
            timeout=600,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        yield work / "build"


def _pins(requirements: Path = LAYER_SOURCE / "requirements.txt") -> dict[str, str]:
    pins = {}
    for line in requirements.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            pin = re.fullmatch(r"([\w.-]+)(?:\[[\w,]+\])?==([\w.]+)", line)
            assert pin, f"{requirements.relative_to(ROOT)}: not an exact pin: {line}"
            pins[re.sub(r"[-_.]+", "_", pin.group(1)).lower()] = pin.group(2)
    return pins


def test_layer_holds_the_shared_package(build_dir: Path) -> None:
    source = {p.relative_to(LAYER_SOURCE) for p in (LAYER_SOURCE / "account_connections").rglob("*.py")}
    built_root = build_dir / "SharedLayer" / "python"
    built = {p.relative_to(built_root) for p in (built_root / "account_connections").rglob("*.py")}
    assert source and source == built


def _installed(folder: Path) -> dict[str, str]:
    installed = {}
    for dist in folder.glob("*.dist-info"):
        name, version = dist.name.removesuffix(".dist-info").rsplit("-", 1)
        installed[re.sub(r"[-_.]+", "_", name).lower()] = version
    return installed


def test_layer_holds_each_pinned_requirement_at_its_version(build_dir: Path) -> None:
    installed = _installed(build_dir / "SharedLayer" / "python")
    pins = _pins()
    assert pins, "layers/shared/requirements.txt pins nothing"
    assert {name: installed.get(name) for name in pins} == pins


def test_layer_binaries_match_the_runtime(build_dir: Path) -> None:
    """Compiled extensions (pydantic-core) must be built for CPython 3.12 on the functions'
    architecture, or every function fails on import."""
    binaries = list((build_dir / "SharedLayer" / "python").rglob("*.so"))
    assert binaries, "expected compiled extensions (pydantic-core) in the layer"
    wrong = [p.name for p in binaries if "cpython-312" in p.name and ARCHITECTURE not in p.name]
    assert not wrong, f"built for another architecture than {ARCHITECTURE}: {wrong}"


@pytest.mark.parametrize("function", FUNCTIONS)
def test_each_function_has_its_handler(build_dir: Path, function: str) -> None:
    source = ROOT / RESOURCES[function]["Properties"]["CodeUri"] / "app.py"
    built = build_dir / function / "app.py"
    assert built.is_file(), f"{function}: no app.py in the build (source {source.relative_to(ROOT)})"
    assert built.read_bytes() == source.read_bytes()


def test_only_the_docs_function_ships_swagger_ui(build_dir: Path) -> None:
    """functions/serve_docs/requirements.txt: Swagger UI's files, in that function alone, at the pin."""
    docs = build_dir / "ApiDocsFunction"
    pins = _pins(ROOT / "functions" / "serve_docs" / "requirements.txt")
    assert {name: _installed(docs).get(name) for name in pins} == pins
    [vendor] = (docs / "swagger_ui_bundle" / "vendor").iterdir()
    assert {"swagger-ui.css", "swagger-ui-bundle.js"} <= {p.name for p in vendor.iterdir()}
    shipping = [function for function in FUNCTIONS if (build_dir / function / "swagger_ui_bundle").exists()]
    assert shipping == ["ApiDocsFunction"]
