"""Scheduled jobs: each a ``handle(event)`` that a function's handler calls."""
