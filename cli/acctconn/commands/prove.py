"""``acctconn prove CONNECTION_ID``: print an account proof made from the caller's AWS credentials."""

from __future__ import annotations

import click

from acctconn import output, proof
from acctconn.params import CONNECTION_ID_TYPE, HTTP_URL


@click.command(short_help="Print an account proof signed with your AWS credentials.")
@click.argument("connection_id", type=CONNECTION_ID_TYPE)
@click.option(
    "--region",
    metavar="REGION",
    help="Sign for this region's STS. Default: us-east-1 unless AWS_REGION, AWS_DEFAULT_REGION "
    "or the profile names one.",
)
@click.option(
    "--endpoint-url",
    type=HTTP_URL,
    help="Sign for this AWS endpoint instead of the regional STS, e.g. the local stack's "
    "emulated AWS (http://127.0.0.1:5000).",
)
@click.option(
    "--profile",
    metavar="PROFILE",
    help="Use this AWS profile, ahead of keys in the environment (default: the standard chain: "
    "environment keys, then AWS_PROFILE or the default profile, SSO, roles).",
)
def prove(connection_id: str, region: str | None, endpoint_url: str | None, profile: str | None) -> None:
    """Print an account proof for CONNECTION_ID, signed with your AWS credentials.

    The proof is the JSON the decision page and POST /verify take as `accountProof`: an
    sts:GetCallerIdentity request, SigV4-signed with your credentials (the standard chain:
    environment, --profile or AWS_PROFILE, SSO, ...) and bound to this connection. It is
    printed on stdout alone, so `PROOF=$(acctconn prove ID)` works; --json changes nothing.

    \b
    Signed headers: Host, Content-Type, X-Amz-Date,
      X-Account-Connection-Id (CONNECTION_ID),
      X-Amz-Security-Token (with temporary credentials).

    The request is never sent by this command. The service sends it to STS to learn which
    principal of which account signed it; the signature is good for about 5 minutes and the
    proof for one decision. Anyone holding it can use it for that decision in that time:
    hand it only to the service.
    """
    aws = proof.session(profile)
    chosen_region = proof.resolve_region(aws, region)
    credentials = proof.load_credentials(aws)
    output.print_json(proof.make_proof(connection_id, credentials, chosen_region, endpoint_url))
