"""``acctconn audit verify FILE [--digests FILE --public-key FILE]``: an export checked
offline, with nothing but the files: its hash chains (``acctconn.verify``) and, given the
digests and their public key, each digest's signature, the digests' chain and each period's
events against its digest (``acctconn.digests``). This module reads and prints."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from acctconn import output
from acctconn.app import App, pass_app
from acctconn.digests import DigestReport, check_digests, load_digests, load_public_key
from acctconn.errors import EXIT_CODES_HELP, CliError, ExitCode
from acctconn.verify import Report, check_chains, read_events

FILE = click.Path(exists=True, dir_okay=False, allow_dash=True, path_type=Path)


def summary(report: Report, failures: int, *, strict: bool, digests: DigestReport | None = None) -> str:
    text = f"{report.events} events in {len(report.chains)} chains: "
    text += f"{failures} problems" if failures else "intact"
    notes = []
    if digests is not None:
        notes.append(
            f"{digests.digests} digests" + (f" up to {digests.last_to}" if digests.last_to else "")
            + (" checked" if failures else " signed and chained, each period as its digest records")
        )  # fmt: skip
        if digests.uncovered and not strict:
            notes.append(f"{digests.uncovered} events not covered by a digest")
    if report.unchained and not strict:
        notes.append(f"{len(report.unchained)} unchained (not checked)")
    if report.chains_mid_way:
        anchor = "the digests anchor them" if digests is not None else "check them with --digests"
        notes.append(f"{report.chains_mid_way} chains start mid-way ({anchor})")
    return text + (f" ({'; '.join(notes)})" if notes else "")


def _read(file: Path) -> bytes:
    try:
        return click.get_binary_stream("stdin").read() if str(file) == "-" else file.read_bytes()
    except OSError as exc:
        raise CliError(f"cannot read {file}: {exc.strerror or exc}", ExitCode.USAGE) from None


@click.command(
    "verify",
    short_help="Check an export's hash chains, and its digests (exit 1 naming each problem).",
    epilog="""\b
Examples:
  acctconn audit export -o events.jsonl
  acctconn audit digests -o digests.json
  acctconn audit public-key -o digest-key.pem
  acctconn audit verify events.jsonl --digests digests.json --public-key digest-key.pem
  acctconn --json audit verify events.jsonl | jq '.problems[]'

"""
    + EXIT_CODES_HELP,
)
@click.argument("file", type=FILE, metavar="FILE")
@click.option(
    "--digests",
    "digests_file",
    type=FILE,
    metavar="FILE",
    help="The signed digests (acctconn audit digests): check each period against its digest.",
)
@click.option(
    "--public-key",
    "key_file",
    type=FILE,
    metavar="FILE",
    help="The digests' public key, PEM (acctconn audit public-key, or aws kms get-public-key).",
)
@click.option("--strict", is_flag=True,
              help="Unchained events, and events no digest covers, are problems too.")  # fmt: skip
@pass_app
def verify(app: App, file: Path, digests_file: Path | None, key_file: Path | None, strict: bool) -> None:
    """Check FILE, an export (JSON Lines) of `acctconn audit export`, against docs/audit.md:
    each event's hash, and each chain's seq, prevHash and at.

    With --digests and --public-key, also each digest's hash and signature (bad-signature),
    the digests' own chain (missing-digest) and, for each digest's period, the export's
    events against the chains it records: their count, last seq and last hash
    (digest-mismatch: events cut from a chain's end, a chain left out or rewritten, events
    inserted). Export the same range as the digests.

    Names each problem, one a line, then a summary; exit 0 when intact, 1 otherwise. Events
    written before the chains existed are listed as unchained, and events after the last
    digest as not covered yet: problems only with --strict.
    """
    if (digests_file is None) != (key_file is None):
        raise click.UsageError("--digests and --public-key go together: the digests are checked with the key")
    lines, unreadable = read_events(_read(file).splitlines())
    report = check_chains(lines)
    report.problems[:0] = unreadable
    digests: DigestReport | None = None
    if digests_file is not None and key_file is not None:
        try:
            loaded = load_digests(_read(digests_file))
        except ValueError as exc:
            raise CliError(f"{digests_file}: {exc}", ExitCode.USAGE) from None
        try:
            key = load_public_key(_read(key_file))
        except ValueError as exc:
            raise CliError(f"{key_file}: {exc}", ExitCode.USAGE) from None
        digests = check_digests(loaded, key, lines)
    failures: list[Any] = [
        *report.failures(strict=strict),
        *(digests.failures(strict=strict) if digests else []),
    ]
    if app.json_output:
        result: dict[str, Any] = {
            "events": report.events,
            "chains": len(report.chains),
            "problems": [problem.as_json() for problem in failures],
            "unchained": [] if strict else [problem.as_json() for problem in report.unchained],
            "chainsStartingMidWay": report.chains_mid_way,
            "intact": not failures,
        }
        if digests is not None:
            result["digests"] = {
                "count": digests.digests,
                "lastTo": digests.last_to,
                "uncovered": digests.uncovered,
                "notes": [] if strict else [problem.as_json() for problem in digests.uncovered_problems],
            }
        output.print_json(result)
    else:
        for problem in failures:
            click.echo(str(problem))
        if not strict:
            for problem in report.unchained:
                click.echo(str(problem))
            for problem in digests.uncovered_problems if digests else []:
                click.echo(f"note: {problem.detail}")
        click.echo(summary(report, len(failures), strict=strict, digests=digests))
    if failures:
        raise click.exceptions.Exit(ExitCode.REFUSED)
