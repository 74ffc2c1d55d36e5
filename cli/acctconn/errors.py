"""Exit codes and the errors that end a command with one of them.

Every error a command expects ends as one line on stderr (``Error: ...``) and an exit code
from :class:`ExitCode`, never a traceback. Commands raise these; click prints them.
"""

from __future__ import annotations

from enum import IntEnum

import click


class ExitCode(IntEnum):
    OK = 0
    #: The service refused the request (403, 404, 409, 422, ...) or a check found a problem.
    REFUSED = 1
    #: A bad option or argument, found before anything was sent (click's own code).
    USAGE = 2
    #: The API could not be reached, timed out, failed (5xx) or answered something unreadable.
    API = 3
    #: No credentials, or credentials the service rejected (401): the bearer token or AWS's.
    AUTH = 4


#: The exit codes as ``--help`` and the README show them.
EXIT_CODES_HELP = """\b
Exit codes:
  0  success
  1  refused by the service (403, 404, 409, 422, ...) or a problem found
  2  usage error (bad option or argument; nothing was sent)
  3  API or network error (unreachable, timeout, 5xx, unreadable answer)
  4  authentication (no token or AWS credentials, or rejected: 401)"""


class CliError(click.ClickException):
    """An expected failure: its message on stderr, the process ends with ``exit_code``."""

    exit_code = ExitCode.REFUSED

    def __init__(self, message: str, exit_code: ExitCode | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class RefusedError(CliError):
    exit_code = ExitCode.REFUSED


class ApiError(CliError):
    exit_code = ExitCode.API


class AuthError(CliError):
    exit_code = ExitCode.AUTH
