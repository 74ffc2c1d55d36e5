"""``acctconn audit digests`` and ``acctconn audit public-key``: the signed digests of a period
(``GET /audit/digests``, every page) and the key that signs them (``GET /audit/public-key``),
written to files for ``acctconn audit verify``."""

from __future__ import annotations

import json
from pathlib import Path

import click

from acctconn import output
from acctconn.app import App, pass_app
from acctconn.commands.audit import date_options
from acctconn.commands.export import output_option, replacing, to_stdout
from acctconn.errors import EXIT_CODES_HELP, ApiError, CliError

PEM = "application/x-pem-file"
KEY_ID_HEADER = "X-Key-Id"


def _write(target: Path, data: bytes) -> str:
    """``data`` into ``target`` whole or not at all ('-': stdout); where it went."""
    if str(target) == "-":
        with to_stdout() as out:
            out.write(data)
        return "stdout"
    if not target.parent.is_dir():
        raise click.BadParameter(f"no folder {str(target.parent)!r}", param_hint="'-o' / '--output'")
    try:
        with replacing(target) as out:
            out.write(data)
    except OSError as exc:
        raise CliError(f"cannot write {target}: {exc.strerror or exc}") from None
    return str(target)


@click.command(
    "digests",
    short_help="The signed digests of a period, as one JSON array, for audit verify.",
    epilog="""\b
Examples:
  acctconn audit digests -o digests.json
  acctconn audit digests --from 2026-12-01 --to 2026-12-31 -o digests.json
  acctconn audit verify events.jsonl --digests digests.json --public-key digest-key.pem

"""
    + EXIT_CODES_HELP,
)
@date_options("Digests whose whole period is")
@output_option("the digests (a JSON array)")
@pass_app
def digests(app: App, from_: str | None, to: str | None, target: Path) -> None:
    """Every signed digest whose whole period lies in the range (GET /audit/digests, every
    page), oldest first, written to FILE as one JSON array.

    Each digest records, for its period, every hash chain that moved with its event count
    and last seq and hash, the previous digest's hash, and a KMS signature
    (docs/audit.md, "Digests"). Export the same range for audit verify.
    """
    with app.client() as api:
        found = list(api.paginate("/audit/digests", {"from": from_, "to": to, "limit": 100}))
    where = _write(target, (json.dumps(found, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))
    last = f", up to {found[-1].get('to')}" if found and isinstance(found[-1], dict) else ""
    output.note(f"wrote {len(found)} digests{last} to {where}")


@click.command(
    "public-key",
    short_help="The public key that signs the digests (PEM), for audit verify.",
    epilog="""\b
Examples:
  acctconn audit public-key -o digest-key.pem
  aws kms get-public-key --key-id <DigestSigningKeyArn> --output text --query PublicKey | base64 -d

"""
    + EXIT_CODES_HELP,
)
@output_option("the PEM")
@pass_app
def public_key(app: App, target: Path) -> None:
    """The public half of the KMS key that signs the digests (GET /audit/public-key), as PEM;
    its ARN on stderr. The same key is `aws kms get-public-key` of the stack output
    DigestSigningKeyArn: take it from there once, and keep it, to trust no one but KMS.
    """
    with app.client() as api:
        response = api.request("GET", "/audit/public-key", accept=PEM)
    if b"-----BEGIN PUBLIC KEY-----" not in response.content:
        raise ApiError("GET /audit/public-key: the answer is not a PEM public key")
    where = _write(target, response.content)
    output.note(f"wrote the public key of {response.headers.get(KEY_ID_HEADER, 'an unnamed key')} to {where}")
