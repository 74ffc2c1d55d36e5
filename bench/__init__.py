"""``make bench`` (``python -m bench``): cold starts, AWS calls per operation, state transitions
and cost, and the local stack under load, measured side by side in one run.

Each section returns a ``report.Section``; ``bench.__main__`` prints them and writes
docs/benchmarks.md.
"""
