"""``acctconn smoke``: after a deployment, check a stack end to end with everything that needs no
mailbox: health, the documents, refusals without identity, a request made and cancelled, and the
audit trail of both verifying offline. ``make smoke URL=... TOKEN=...`` runs it; ``make test``
runs it against the local stack, so the checks cannot rot before anyone points them at AWS."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import click

from acctconn import output
from acctconn.api import ApiClient
from acctconn.app import App, pass_app
from acctconn.commands.export import export_pages
from acctconn.errors import EXIT_CODES_HELP, ApiError, AuthError, CliError, ExitCode
from acctconn.verify import verify_lines

# How long the cancelled request may take to read CANCELLED (the workflow ends it).
CANCEL_WAIT_SECONDS = 30.0


class CheckFailed(Exception):
    """A check's expectation did not hold: its message says what was seen."""


@dataclass
class Smoke:
    api: ApiClient
    auditor: ApiClient
    space_id: str
    account_id: str
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    connection_id: str | None = None

    # ---- the checks, in order; each returns what it saw --------------------------------------

    def health(self) -> str:
        answer = self.api.send("GET", "/health")
        expect(answer.status_code == 200, f"GET /health answered {answer.status_code}")
        return "GET /health 200"

    def documents(self) -> str:
        document = self.api.send("GET", "/openapi.json")
        expect(document.status_code == 200, f"GET /openapi.json answered {document.status_code}")
        body = document.json()
        paths = body.get("paths", {}) if isinstance(body, dict) else {}
        expect(isinstance(body, dict) and "openapi" in body, "GET /openapi.json is not an OpenAPI document")
        wanted = ["/spaces/{spaceId}/connections", "/audit/export", "/audit/digests"]
        missing = [path for path in wanted if path not in paths]
        expect(not missing, f"the OpenAPI document lacks {', '.join(missing)}")
        page = self.api.send("GET", "/docs")
        expect(page.status_code == 200 and "text/html" in page.headers.get("content-type", ""),
               f"GET /docs answered {page.status_code} {page.headers.get('content-type')}")  # fmt: skip
        expect("content-security-policy" in page.headers, "GET /docs has no Content-Security-Policy")
        return f"OpenAPI {body['openapi']} with {len(paths)} paths; /docs under a CSP"

    def refusals(self) -> str:
        listed = f"/spaces/{self.space_id}/connections"
        for path, headers in (
            (listed, {}),
            (listed, {"Authorization": "Bearer not-a-token"}),
            ("/audit/events", {}),
            ("/audit/export", {"Authorization": "Bearer not-a-token"}),
        ):
            answer = self.api.send("GET", path, headers=headers)
            shown = "no token" if not headers else "a bad token"
            expect(
                answer.status_code == 401, f"GET {path} with {shown} answered {answer.status_code}, not 401"
            )
        # A decision with a token the service never issued changes nothing and is refused.
        forged = {"token": "x" * 43, "decision": "approve"}
        decided = self.api.send("POST", "/verify", json=forged)
        expect(
            400 <= decided.status_code < 500,
            f"POST /verify with a made-up token answered {decided.status_code}",
        )
        return f"401 without a token or with a bad one; a decision with a made-up token {decided.status_code}"

    def create_and_cancel(self) -> str:
        body = {"accountId": self.account_id, "displayName": f"Smoke test {uuid.uuid4().hex[:8]}",
                "description": "made and cancelled by acctconn smoke"}  # fmt: skip
        created = self.api.post_json(f"/spaces/{self.space_id}/connections", body,
                                     headers={"Idempotency-Key": str(uuid.uuid4())})  # fmt: skip
        expect(isinstance(created, dict) and created.get("status") == "PENDING_APPROVAL",
               f"the request was answered {created!r:.200}")  # fmt: skip
        self.connection_id = str(created["connectionId"])
        path = f"/spaces/{self.space_id}/connections/{self.connection_id}"
        read = self.api.get_json(path)
        expect(read.get("connectionId") == self.connection_id, f"GET {path} answered another connection")
        self.api.delete_json(path)
        deadline = time.monotonic() + CANCEL_WAIT_SECONDS
        while (status := self.api.get_json(path).get("status")) != "CANCELLED":
            expect(time.monotonic() < deadline, f"{self.connection_id} is {status}, not CANCELLED")
            time.sleep(0.5)
        return f"{self.connection_id} requested (PENDING_APPROVAL), read back, cancelled (CANCELLED)"

    def audit_trail(self) -> str:
        expect(self.connection_id is not None, "no request was made")
        events = self.auditor.get_json("/audit/events", {"connectionId": self.connection_id, "limit": 100})
        types = [event.get("type") for event in events.get("items", [])]
        statuses = [event.get("toStatus") for event in events.get("items", [])]
        expect("REQUESTED" in types and "CANCELLED" in statuses,
               f"the request's events are {types} (statuses {statuses})")  # fmt: skip
        since = (self.started - timedelta(minutes=1)).isoformat(timespec="seconds").replace("+00:00", "Z")
        lines = [line for body in export_pages(self.auditor, {"from": since}) for line in body.splitlines()]
        report = verify_lines(lines)
        problems = report.failures()
        expect(not problems, "the export does not verify: " + "; ".join(str(p) for p in problems[:3]))
        chain = report.chains.get(f"CONNECTION#{self.connection_id}")
        expect(chain is not None and chain.first_seq == 1,
               f"the export has no whole chain of {self.connection_id}")  # fmt: skip
        assert chain is not None
        return f"{len(types)} events of the request; the export since {since}: {report.events} events, intact"


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


CHECKS: list[tuple[str, Callable[[Smoke], str]]] = [
    ("health", Smoke.health),
    ("documents", Smoke.documents),
    ("refusals without identity", Smoke.refusals),
    ("a request made and cancelled", Smoke.create_and_cancel),
    ("its audit trail verifies", Smoke.audit_trail),
]


@click.command(
    "smoke",
    short_help="Check a deployed stack end to end (makes one request and cancels it).",
    epilog="""\b
Examples:
  ACCTCONN_TOKEN=... ACCTCONN_AUDITOR_TOKEN=... \\
    acctconn --api https://abc123.execute-api.eu-west-1.amazonaws.com \\
    smoke --space demo --account 111122223333
  make smoke URL=https://... TOKEN=... AUDITOR_TOKEN=... SPACE=demo ACCOUNT=111122223333

"""
    + EXIT_CODES_HELP,
)
@click.option("--space", "space_id", required=True, help="A space where the token's user may request.")
@click.option("--account", "account_id", required=True, help="An account with a registered administrator.")
@click.option(
    "--auditor-token",
    envvar="ACCTCONN_AUDITOR_TOKEN",
    show_envvar=True,
    metavar="JWT",
    help="A token of the auditors group (default: the same as --token).",
)
@pass_app
def smoke(app: App, space_id: str, account_id: str, auditor_token: str | None) -> None:
    """Check the stack at --api with everything that needs no mailbox: GET /health; the
    OpenAPI document and /docs (under a Content-Security-Policy); 401 without a token and with
    a bad one, and a decision with a made-up link token refused; a request in SPACE for ACCOUNT made, read
    back and cancelled (it stays in the audit trail as CANCELLED); its events, and the export
    since the run began, verifying offline (acctconn audit verify's checks).

    One line per check (ok or FAIL, and how long it took), then a summary. Exit 0 when every
    check passes, 1 when one fails, 3 when the API cannot be reached, 4 when a token is refused.
    """
    if not app.token:
        raise AuthError("no bearer token: set ACCTCONN_TOKEN (or pass --token)")
    auditor = App(app.api_url, auditor_token or app.token, app.json_output)
    results: list[dict[str, Any]] = []
    with app.client() as api, auditor.client() as audit_api:
        run = Smoke(api, audit_api, space_id, account_id)
        for name, check in CHECKS:
            began = time.monotonic()
            try:
                seen, passed = check(run), True
            except CheckFailed as exc:
                seen, passed = str(exc), False
            except (AuthError, ApiError):
                raise  # no token, a refused one, or an API that cannot be reached: the exit code says so
            except CliError as exc:  # the API refused a step (403, 404, 409, 422): the check failed
                seen, passed = exc.format_message(), False
            millis = (time.monotonic() - began) * 1000
            results.append({"check": name, "ok": passed, "detail": seen, "ms": round(millis)})
            if not app.json_output:
                click.echo(f"{'ok  ' if passed else 'FAIL'}  {name} ({millis:.0f} ms): {seen}")
    failed = [result for result in results if not result["ok"]]
    if app.json_output:
        output.print_json({"api": app.api_url, "connectionId": run.connection_id, "checks": results,
                           "passed": not failed})  # fmt: skip
    else:
        click.echo(
            f"smoke: {len(results) - len(failed)} of {len(results)} checks passed against {app.api_url}"
        )
    if failed:
        raise click.exceptions.Exit(ExitCode.REFUSED)
