"""``acctconn audit export``: every audit event of a period as JSON Lines, in chain order, from
``GET /audit/export`` (its pages followed through the ``X-Next-Token`` header), into a file
that appears only once the whole export is written."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import click
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from acctconn import output
from acctconn.api import NEXT_TOKEN_HEADER, ApiClient, Params
from acctconn.app import App, pass_app
from acctconn.commands.audit import date_options
from acctconn.errors import EXIT_CODES_HELP, ApiError, CliError

NDJSON = "application/x-ndjson"
EXPORT_PATH = "/audit/export"


def progress_console() -> Console:
    """Where the progress goes: stderr, never stdout (a function, for the tests to replace)."""
    return Console(stderr=True)


def export_pages(api: ApiClient, params: Params) -> Iterator[bytes]:
    """Each page's JSON Lines as sent (each line ending with a newline), to the last page."""
    query: dict[str, str | int | None] = dict(params)
    seen: set[str] = set()
    while True:
        response = api.request("GET", EXPORT_PATH, params=query, accept=NDJSON)
        media = response.headers.get("content-type", "").split(";")[0].strip().lower()
        body = response.content
        if body and media != NDJSON:
            raise ApiError(f"GET {EXPORT_PATH}: the answer ({media or 'no content type'}) is not JSON Lines")
        if body and not body.endswith(b"\n"):
            body += b"\n"
        yield body
        next_token = response.headers.get(NEXT_TOKEN_HEADER) or None
        if next_token is None:
            return
        if next_token in seen:
            raise ApiError(f"GET {EXPORT_PATH}: the API gave the page token {next_token!r} twice")
        seen.add(next_token)
        query["nextToken"] = next_token


def chain_of(line: bytes) -> str | None:
    try:
        event = json.loads(line)
    except ValueError:
        return None
    chain = event.get("chain") if isinstance(event, dict) else None
    return chain if isinstance(chain, str) else None


def output_option(what: str) -> Any:
    """``-o FILE`` of the commands that write a file whole or not at all ('-': stdout)."""
    return click.option(
        "-o",
        "--output",
        "target",
        required=True,
        metavar="FILE",
        type=click.Path(dir_okay=False, writable=True, allow_dash=True, path_type=Path),
        help=f"Write {what} to FILE ('-': stdout).",
    )


@contextlib.contextmanager
def replacing(target: Path) -> Iterator[IO[bytes]]:
    """A temporary file in ``target``'s folder, renamed to ``target`` when the block ends
    without an error, and removed when it does not: no half file is ever at ``target``."""
    handle = tempfile.NamedTemporaryFile(
        dir=target.parent, prefix=f".{target.name}.", suffix=".part", delete=False
    )
    try:
        with handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(handle.name, 0o666 & ~umask)  # a plain new file's mode, not the temporary's 0600
        os.replace(handle.name, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(handle.name)
        raise


@contextlib.contextmanager
def to_stdout() -> Iterator[IO[bytes]]:
    """A spool copied to stdout when the block ends without an error: a failed export writes
    nothing there either."""
    with tempfile.TemporaryFile() as spool:
        yield spool
        spool.seek(0)
        stdout = click.get_binary_stream("stdout")
        shutil.copyfileobj(spool, stdout)
        stdout.flush()


@click.command(
    "export",
    short_help="Every audit event of a period as JSON Lines, for audit verify.",
    epilog="""\b
Examples:
  acctconn audit export --from 2026-12-01 -o events.jsonl
  acctconn audit export --from 2026-12-01 --to 2026-12-31 -o - | gzip > events.jsonl.gz
  acctconn audit verify events.jsonl

"""
    + EXIT_CODES_HELP,
)
@date_options("Events")
@output_option("the JSON Lines")
@pass_app
def export(app: App, from_: str | None, to: str | None, target: Path) -> None:
    """Every audit event of a period (GET /audit/export), oldest first and each chain in seq
    order, written to FILE as the API sends it: one JSON object a line.

    Every page is fetched; FILE appears only when all are written (a failure leaves no
    file, and with -o - writes nothing to stdout). The progress and a summary go to stderr.
    """
    to_stdout_ = str(target) == "-"
    if not to_stdout_ and not target.parent.is_dir():
        raise click.BadParameter(f"no folder {str(target.parent)!r}", param_hint="'-o' / '--output'")
    console = progress_console()
    events, pages, chains = 0, 0, set()
    progress = Progress(
        SpinnerColumn(),
        TextColumn("exporting: {task.fields[events]} events, {task.fields[pages]} pages"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )
    sink = to_stdout() if to_stdout_ else replacing(target)
    try:
        with app.client() as api, progress, sink as out:
            task = progress.add_task("export", events=0, pages=0, total=None)
            for body in export_pages(api, {"from": from_, "to": to}):
                out.write(body)
                pages += 1
                for line in body.splitlines():
                    if line.strip():
                        events += 1
                        chain = chain_of(line)
                        if chain is not None:
                            chains.add(chain)
                progress.update(task, events=events, pages=pages)
    except OSError as exc:
        raise CliError(f"cannot write {target}: {exc.strerror or exc}") from None
    where = "stdout" if to_stdout_ else str(target)
    output.note(f"exported {events} events of {len(chains)} chains to {where}")
