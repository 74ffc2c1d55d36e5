"""``make bench``: the service and the local stack, measured; may import local, tests and the service.

``python -m bench``: cold starts, AWS calls per operation, state transitions and cost, and the
local stack under load, measured side by side in one run. Each section returns a
``report.Section``; ``bench.__main__`` prints them and writes docs/benchmarks.md.

Imports: the standard library, boto3, moto, pytest, modules of ``bench`` without cycles
(tests/checks/test_local_imports.py), the local stack (``local``), the test helpers and fixtures
(``tests.support``, ``tests.workflow``) and the service's shared package (``account_connections``).
Only its own tests (tests/unit/test_bench_helpers.py) import ``bench``.
"""
