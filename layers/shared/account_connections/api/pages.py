"""The administrator's HTML pages: confirmation, paste-a-token, results and refusals.

Plain, accessible HTML with no external asset: one inline stylesheet, allowed by its hash in
the Content-Security-Policy. Every value is escaped with ``html.escape``.
"""

from __future__ import annotations

import base64
import hashlib
from html import escape

from account_connections.domain.connection import Approval
from account_connections.domain.statuses import ConnectionStatus
from account_connections.logic.approval import DecisionOutcome, VerificationView

_STYLE = (
    "body{font:16px/1.5 system-ui,sans-serif;max-width:42rem;margin:2rem auto;padding:0 1rem;color:#1b1b1b}"
    "h1{font-size:1.5rem}dl{display:grid;grid-template-columns:max-content 1fr;gap:.25rem 1rem}"
    "dt{font-weight:600}dd{margin:0;overflow-wrap:anywhere}fieldset{margin:1rem 0;padding:1rem}"
    "label{display:block;margin:.5rem 0}textarea,input[type=text]{width:100%;box-sizing:border-box}"
    "button{font:inherit;padding:.5rem 1rem;margin:.5rem .5rem 0 0}"
    ".notice{border-left:4px solid #8a5a00;padding:.5rem 1rem;background:#fff7e6}"
)
_STYLE_HASH = base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()

CONTENT_SECURITY_POLICY = (
    f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
# Sent with every page: links are capabilities, so nothing may cache, refer or frame them.
SECURITY_HEADERS: dict[str, str] = {
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}
HTML = "text/html; charset=utf-8"


def _layout(title: str, body: str) -> str:
    return (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="referrer" content="no-referrer">\n'
        f"<title>{escape(title)}</title>\n<style>{_STYLE}</style>\n</head>\n"
        f"<body>\n<main>\n<h1>{escape(title)}</h1>\n{body}\n</main>\n</body>\n</html>\n"
    )


def _facts(rows: list[tuple[str, str]]) -> str:
    items = "".join(f"<dt>{escape(name)}</dt><dd>{escape(value)}</dd>" for name, value in rows)
    return f"<dl>{items}</dl>"


def confirmation(view: VerificationView) -> str:
    """The request as asked, with the decision form (or a notice when it cannot be decided yet)."""
    conn = view.connection
    roles = "".join(f"<li>{escape(arn)}</li>" for arn in conn.roleArns) or "<li>None</li>"
    facts = _facts([
        ("Space", conn.spaceId),
        ("AWS account", conn.accountId),
        ("Display name", conn.displayName),
        ("Description", conn.description or "(none)"),
        ("Requested by", conn.requestedBy),
        ("Requested at", conn.createdAt),
        ("Link expires", conn.expiresAt),
    ])  # fmt: skip
    intro = (
        "<p>A space asks to connect this AWS account so that its workflows can use IAM roles in it. "
        "Verify the space to connect it, or reject the request with a reason.</p>"
    )
    roles_html = (
        f"<h2>Roles to attach once verified</h2>\n<ul>{roles}</ul>{_approvals(conn.quorum, conn.approvals)}"
    )
    if view.csrf is None:
        form = (
            '<p class="notice" role="status">The approval workflow is still starting. '
            "Reload this page in a moment.</p>"
        )
    else:
        form = (
            '<form method="post" action="/verify">\n'
            f'<input type="hidden" name="token" value="{escape(view.token)}">\n'
            f'<input type="hidden" name="csrf" value="{escape(view.csrf)}">\n'
            f"{_proof_field(view)}"
            "<fieldset><legend>Verify</legend>\n"
            '<label><input type="checkbox" name="authorizePaidTiers" value="true"> '
            "Authorize paid tiers for this space</label>\n"
            '<button type="submit" name="decision" value="approve">Verify space</button>\n</fieldset>\n'
            "<fieldset><legend>Reject</legend>\n"
            '<label for="reason">Reason (required to reject)</label>\n'
            '<textarea id="reason" name="reason" rows="3" maxlength="1000"></textarea>\n'
            '<button type="submit" name="decision" value="reject">Reject</button>\n</fieldset>\n'
            "</form>"
        )
    return _layout("Connect an AWS account to a space", f"{intro}\n{facts}\n{roles_html}\n{form}")


def _approvals(quorum: int, approvals: list[Approval]) -> str:
    """Who has approved so far, when the request needs more than one approver."""
    if quorum <= 1 and not approvals:
        return ""
    how = {"ACCOUNT_PROOF": "account proof", "EMAIL_LINK": "emailed link"}
    listed = "".join(
        f"<li>{escape(a.approver)} ({how[a.decisionMethod]}, {escape(a.at)})</li>" for a in approvals
    )
    items = listed or "<li>Nobody yet</li>"
    return (
        f"\n<h2>Approvals: {len(approvals)} of {quorum} needed</h2>\n<ul>{items}</ul>\n"
        "<p>The request is approved once enough approvers have approved it; one rejection rejects it.</p>"
    )


def _proof_field(view: VerificationView) -> str:
    """Where a decision needs an account proof: what it is, the one command that makes it, the field."""
    if not view.proofNeeded:
        return ""
    command = f"acctconn prove {view.connection.connectionId}"
    return (
        "<fieldset><legend>Account proof</legend>\n"
        "<p>Deciding needs proof that you act in AWS account "
        f"{escape(view.connection.accountId)}: a request to AWS STS signed with your own credentials of "
        "that account, which this service sends to STS itself to learn who you are. It is never "
        "executed by you, and it works for this request only, for five minutes. Make it with:</p>\n"
        f"<pre><code>{escape(command)}</code></pre>\n"
        "<p>(with the AWS CLI's usual credentials: a profile, SSO or environment variables), then "
        "paste what it prints:</p>\n"
        '<label for="accountProof">Account proof (JSON)</label>\n'
        '<textarea id="accountProof" name="accountProof" rows="6" required spellcheck="false" '
        'autocomplete="off"></textarea>\n</fieldset>\n'
    )


def paste_token() -> str:
    """``GET /verify`` without a token: a field for the connection token handed over by other means."""
    form = (
        "<p>Paste the connection token that the requester gave you, or open the link from the "
        "approval email. With a connection token, deciding also needs an account proof: a "
        "signed AWS STS request from an identity of the account, made with "
        "<code>acctconn prove CONNECTION_ID</code>.</p>\n"
        '<form method="get" action="/verify">\n'
        '<label for="token">Connection token</label>\n'
        '<input type="text" id="token" name="token" required autocomplete="off" spellcheck="false">\n'
        '<button type="submit">Show the request</button>\n</form>'
    )
    return _layout("Verify a connection request", form)


def result(outcome: DecisionOutcome) -> str:
    facts = _facts([
        ("Space", outcome.spaceId),
        ("AWS account", outcome.accountId),
        ("Display name", outcome.displayName),
        ("Decided by", outcome.decidedBy),
        ("Decided at", outcome.decidedAt),
        ("How", "account proof" if outcome.decisionMethod == "ACCOUNT_PROOF" else "emailed link"),
    ])  # fmt: skip
    if outcome.decision == "approve" and outcome.status == ConnectionStatus.PENDING_APPROVAL:
        more = outcome.quorum - len(outcome.approvals)
        text = (f'<p role="status">Your approval is recorded. The request needs {more} more '
                f"approval{'s' if more != 1 else ''} before it is approved; everyone who got a link is told "
                "how it ends.</p>")  # fmt: skip
        title = "Approval recorded"
        return _layout(title, f"{text}\n{facts}{_approvals(outcome.quorum, outcome.approvals)}")
    if outcome.decision == "approve":
        paid = "authorized" if outcome.paidTiersAuthorized else "not authorized"
        text = (f"<p role=\"status\">You verified the space. Paid tiers: {paid}. The service now checks the "
                "request and attaches its roles; the requester is told the outcome.</p>")  # fmt: skip
        title = "Request approved"
    else:
        text = f'<p role="status">You rejected the request. Reason: {escape(outcome.reason or "")}</p>'
        title = "Request rejected"
    return _layout(title, f"{text}\n{facts}")


def refusal(status: int, title: str, detail: str) -> str:
    """404 (unknown link), 410 (used, expired, cancelled, replaced) and every other refusal."""
    hint = {
        404: "Check that the whole link was copied, or paste the connection token on the "
        '<a href="/verify">verification page</a>.',
        410: "Nothing was changed. Ask the requester for a new request or a new link if one is still needed.",
    }.get(status, "Nothing was changed.")
    return _layout(title, f'<p role="alert">{escape(detail)}</p>\n<p>{hint}</p>')
