"""``acctconn audit verify FILE``: the hash chains of an export checked offline, with nothing
but the file (``acctconn.verify`` does the checks; this module reads and prints)."""

from __future__ import annotations

from pathlib import Path

import click

from acctconn import output
from acctconn.app import App, pass_app
from acctconn.errors import EXIT_CODES_HELP, CliError, ExitCode
from acctconn.verify import Report, verify_lines


def summary(report: Report, failures: int, *, strict: bool) -> str:
    text = f"{report.events} events in {len(report.chains)} chains: "
    text += f"{failures} problems" if failures else "intact"
    notes = []
    if report.unchained and not strict:
        notes.append(f"{len(report.unchained)} unchained (not checked)")
    if report.chains_mid_way:
        notes.append(
            f"{report.chains_mid_way} chains start mid-way (their start is anchored by the digests, "
            "not checked yet)"
        )
    return text + (f" ({'; '.join(notes)})" if notes else "")


@click.command(
    "verify",
    short_help="Check the hash chains of an export (exit 1 naming each problem).",
    epilog="""\b
Examples:
  acctconn audit export --from 2026-12-01 -o events.jsonl
  acctconn audit verify events.jsonl
  acctconn --json audit verify events.jsonl | jq '.problems[]'

"""
    + EXIT_CODES_HELP,
)
@click.argument(
    "file", type=click.Path(exists=True, dir_okay=False, allow_dash=True, path_type=Path), metavar="FILE"
)
@click.option("--strict", is_flag=True, help="Unchained events (no chain, seq or hash) are problems too.")
@pass_app
def verify(app: App, file: Path, strict: bool) -> None:
    """Check the hash chains of FILE, an export (JSON Lines) of `acctconn audit export`,
    against docs/audit.md: each event's hash, and each chain's seq, prevHash and at.

    Names each problem (modified, removed, inserted, reordered; a line that is not a JSON
    object), one a line, then a summary; exit 0 when intact, 1 otherwise. Events written
    before the chains existed are listed as unchained, a problem only with --strict. The
    signed digests, which anchor where each chain starts and ends, are not checked yet.
    """
    try:
        if str(file) == "-":
            report = verify_lines(click.get_binary_stream("stdin"))
        else:
            with file.open("rb") as lines:
                report = verify_lines(lines)
    except OSError as exc:
        raise CliError(f"cannot read {file}: {exc.strerror or exc}", ExitCode.USAGE) from None
    failures = report.failures(strict=strict)
    if app.json_output:
        output.print_json(
            {
                "events": report.events,
                "chains": len(report.chains),
                "problems": [problem.as_json() for problem in failures],
                "unchained": [] if strict else [problem.as_json() for problem in report.unchained],
                "chainsStartingMidWay": report.chains_mid_way,
                "intact": not failures,
            }
        )
    else:
        for problem in failures:
            click.echo(str(problem))
        if not strict:
            for problem in report.unchained:
                click.echo(str(problem))
        click.echo(summary(report, len(failures), strict=strict))
    if failures:
        raise click.exceptions.Exit(ExitCode.REFUSED)
