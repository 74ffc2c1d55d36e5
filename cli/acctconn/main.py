"""The ``acctconn`` command: global options, then one command or command group per module
of ``acctconn.commands``, each registered below with ``cli.add_command``."""

from __future__ import annotations

import click

from acctconn import __version__
from acctconn.app import App
from acctconn.commands.approvers import approvers
from acctconn.commands.audit import audit
from acctconn.commands.connections import connections
from acctconn.commands.digests import digests, public_key
from acctconn.commands.export import export
from acctconn.commands.prove import prove
from acctconn.commands.smoke import smoke
from acctconn.commands.verify import verify
from acctconn.errors import EXIT_CODES_HELP
from acctconn.params import HTTP_URL

DEFAULT_API = "http://127.0.0.1:3000"


@click.group(
    epilog=EXIT_CODES_HELP,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.option(
    "--api",
    "api_url",
    type=HTTP_URL,
    envvar="ACCTCONN_API",
    show_envvar=True,
    default=DEFAULT_API,
    show_default=True,
    help="Base URL of the service's HTTP API.",
)
@click.option(
    "--token",
    envvar="ACCTCONN_TOKEN",
    show_envvar=True,
    metavar="JWT",
    help="Bearer token for the API (prefer the environment variable: options show in process lists).",
)
@click.option(
    "--json", "json_output", is_flag=True, help="Print results as JSON for machines instead of tables."
)
@click.version_option(__version__, prog_name="acctconn")
@click.pass_context
def cli(ctx: click.Context, api_url: str, token: str | None, json_output: bool) -> None:
    """Client of the account connections service.

    A space asks to connect an AWS account; the account's administrator approves, with an
    emailed link or with an account proof made by `acctconn prove`.
    """
    ctx.obj = App(api_url=api_url, token=token or None, json_output=json_output)


cli.add_command(connections)
cli.add_command(approvers)
audit.add_command(export)
audit.add_command(verify)
audit.add_command(digests)
audit.add_command(public_key)
cli.add_command(audit)
cli.add_command(prove)
cli.add_command(smoke)


def main() -> None:
    cli(prog_name="acctconn")
