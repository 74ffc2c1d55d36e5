"""Who may decide a request, and the proof they give (SPEC.md, "Decisions").

- An emailed link decides for the address it was sent to (``EMAIL_LINK``).
- A connection token (what the requester got) only opens the page: deciding with it needs an
  account proof from a principal of the connection's account (``ACCOUNT_PROOF``), who is then
  the one recorded, and the registered administrator is told.
- With ``RequireAccountProof`` every decision needs a proof, link or not (the mailbox and the
  account); a proof given with a link is checked even when it is not required.
- When the registration names ``approverPrincipals``, a proof counts only from one of them.
- The requester never decides their own request: not through a link sent to their own address,
  not with a proof whose principal is their ``sub``.
"""

from __future__ import annotations

from typing import NamedTuple

from account_connections.domain.connection import DecisionMethod, ShownRequest
from account_connections.domain.errors import AccountProofRefused, NotAuthorized
from account_connections.domain.proof import AccountProof, CallerIdentity, matches
from account_connections.domain.tokens import LinkToken, TokenKind
from account_connections.logic.links import quoted
from account_connections.ports import ProofVerifier

SELF_DECISION = "the requester cannot decide their own request"


class Decider(NamedTuple):
    """Who decides: recorded as ``decided_by`` by ``method``; ``proven`` is the principal a proof
    showed (with a link too), ``signature`` the proof's, spent by the decision."""

    decided_by: str
    method: DecisionMethod
    proven: CallerIdentity | None = None
    signature: str | None = None

    @property
    def key(self) -> str:
        """Who counts as one approver: the mailbox a link went to, or the principal a proof proved
        with a connection token (an assumed role counts as its role, however many sessions)."""
        if self.method == "ACCOUNT_PROOF" and self.proven is not None:
            return self.proven.principal_arn
        return self.decided_by.strip().casefold()


def proof_needed(token: LinkToken, require_account_proof: bool) -> bool:
    return token.kind == TokenKind.CONNECTION_TOKEN or require_account_proof


def decider(
    token: LinkToken,
    shown: ShownRequest,
    proof: AccountProof | None,
    proofs: ProofVerifier,
    *,
    require_account_proof: bool,
) -> Decider:
    """Raises ``NotAuthorized`` (the requester deciding for themselves), ``AccountProofRefused``
    (a proof missing, refused by the checks or by STS, from another account, or from a principal
    the registration does not name) and ``DependencyUnavailable`` (STS did not answer)."""
    if token.kind == TokenKind.LINK and _same_address(token.approverEmail, token.requesterEmail):
        raise NotAuthorized(SELF_DECISION)
    if proof is None:
        if proof_needed(token, require_account_proof):
            raise AccountProofRefused(
                "deciding this way needs an account proof: run `acctconn prove "
                f"{shown.connectionId}` with credentials of account {shown.accountId} and send its output"
            )
        # The address the link went to. A link resent while no administrator was registered has none.
        return Decider(token.approverEmail or f"administrator of account {shown.accountId}", "EMAIL_LINK")
    identity, signature = proofs.verify(proof, shown.connectionId)
    if identity.account != shown.accountId:
        raise AccountProofRefused(
            f"the account proof is from account {identity.account}, not the connection's account "
            f"{shown.accountId}"
        )
    if token.approverPrincipals and not matches(identity.principal_arn, token.approverPrincipals):
        raise AccountProofRefused(
            f"{identity.principal_arn} is not one of the principals registered to approve account "
            f"{shown.accountId}"
        )
    if shown.requestedBy in (identity.arn, identity.principal_arn):
        raise NotAuthorized(SELF_DECISION)
    if token.kind == TokenKind.CONNECTION_TOKEN:
        return Decider(identity.arn, "ACCOUNT_PROOF", identity, signature)
    return Decider(token.approverEmail or identity.arn, "EMAIL_LINK", identity, signature)


def _same_address(one: str | None, other: str | None) -> bool:
    return bool(one and other and one.strip().casefold() == other.strip().casefold())


def proof_notice(shown: ShownRequest, decision: str, who: Decider, at: str) -> tuple[str, str]:
    """The email to the account's administrator after a decision made with an account proof."""
    subject = f"AWS account {shown.accountId}: a connection request was decided with an account proof"
    body = "\n".join([
        f"A request to connect AWS account {shown.accountId} to space {shown.spaceId} was "
        f"{'approved' if decision == 'approve' else 'rejected'} at {at}",
        f"by {who.decided_by}, who proved control of the account with a signed STS request",
        "instead of the link emailed to you.",
        "",
        f"  Connection:    {shown.connectionId}",
        "",
        "Requested by (as the requester's identity provider names them, quoted):",
        *quoted(shown.requestedBy),
        "",
        "If you did not expect this, review the principals that may act in the account and ask",
        "the space to disconnect it.",
    ])  # fmt: skip
    return subject[:99], body
