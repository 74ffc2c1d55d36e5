"""``make bench``: every section in one run, printed as tables and written to docs/benchmarks.md."""

from __future__ import annotations

import contextlib
import io
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from bench import calls, cold_start, load, transitions
from bench.report import Section, as_markdown, as_text, machine_facts

OUTPUT = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"


def _section(title: str, run: Callable[[], Section], quiet: bool = False) -> Section:
    """Run one section; a section that fails is reported as such and the others still run."""
    started = time.monotonic()
    print(f"-- {title} ...", flush=True)
    try:
        if quiet:  # the in-process handlers print their EMF metrics to stdout
            with contextlib.redirect_stdout(io.StringIO()):
                section = run()
        else:
            section = run()
    except Exception as exc:
        traceback.print_exc()
        section = Section(title, "(failed)", notes=[f"this section failed: {type(exc).__name__}: {exc}"])
    print(f"   done in {time.monotonic() - started:.0f} s", flush=True)
    return section


def main() -> int:
    started = time.monotonic()
    facts = machine_facts()
    sections = [
        _section("1. Cold start", cold_start.run),
        _section("2. AWS calls per operation", calls.run, quiet=True),
        _section("3. State transitions and cost per approved request", transitions.run, quiet=True),
        _section("4. The local stack under load", load.run),
    ]
    elapsed = time.monotonic() - started
    print(as_text(sections))
    OUTPUT.write_text(as_markdown(sections, facts, elapsed))
    print(
        f"\nWritten to {OUTPUT.relative_to(Path.cwd()) if OUTPUT.is_relative_to(Path.cwd()) else OUTPUT} "
        f"in {elapsed:.0f} s"
    )
    return 1 if any(section.method == "(failed)" for section in sections) else 0


if __name__ == "__main__":
    sys.exit(main())
