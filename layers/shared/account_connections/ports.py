"""The ports: what the use cases in ``logic/`` need from the world, as Protocols. The adapters in
``adapters/`` implement them over AWS; the tests' in-memory fakes implement them over dicts and
enforce the same conditions. Imports the domain only."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Generic, NamedTuple, Protocol, TypeVar

from account_connections.domain.chain import ChainHead
from account_connections.domain.tokens import TokenState

if TYPE_CHECKING:  # annotations only: importing the ports imports no more of the domain than this
    from account_connections.domain.audit import AuditEvent
    from account_connections.domain.connection import (
        Approval,
        Connection,
        ConnectionSecrets,
        RoleAttachment,
        ShownRequest,
        StatusChange,
    )
    from account_connections.domain.digest import Digest
    from account_connections.domain.limits import LinkLimit
    from account_connections.domain.policy import ApprovalPolicy
    from account_connections.domain.proof import AccountProof, CallerIdentity
    from account_connections.domain.registry import AddressSubscription, Approver, Member, Space, SpaceRole
    from account_connections.domain.statuses import ConnectionStatus
    from account_connections.domain.tokens import LinkToken

T = TypeVar("T")


class Page(NamedTuple, Generic[T]):
    items: list[T]
    next_token: str | None = None


class ConnectionQuery(NamedTuple):
    """An auditor's filter over connections; the store picks the index that serves it."""

    status: ConnectionStatus | None = None
    space_id: str | None = None
    account_id: str | None = None
    created_from: str | None = None
    created_to: str | None = None


class EventQuery(NamedTuple):
    connection_id: str | None = None
    actor: str | None = None
    at_from: str | None = None
    at_to: str | None = None


class LinkChange(NamedTuple):
    """A change of a pending request's links, written in one transaction on condition that the
    connection keeps its status and its ``revision`` as read: the links ``issue``d (each token's
    record, for the address in its ``approverEmail``), the live links that die (``retire``, as
    ``retire_as``) and those that live on with the new task token (``refresh``); ``links``, the
    live links after it (address -> hash), ``notified`` every address that got a link so far, and
    the audit ``events``. ``task_token``/``csrf_secret``: the workflow entered a new wait (keep
    them; the tokens issued and refreshed carry copies). ``policy``: a new snapshot of the
    account's policy (the first link, a policy change): the new ``round``, its approvals reset
    to none, ``quorum`` needed. ``escalated``: the request escalated. ``connection_token``: the
    connection token's hash and copies (task token, CSRF secret, round, quorum, principals, addresses).
    ``limit``: the rate limit a resend must pass, at ``at`` (None: the workflow's own links)."""

    at: str
    issue: list[LinkToken]
    links: dict[str, str]
    notified: list[str]
    events: list[AuditEvent]
    retire: Sequence[str] = ()
    retire_as: TokenState = TokenState.REPLACED
    refresh: Sequence[str] = ()
    verify_base_url: str | None = None
    task_token: str | None = None
    csrf_secret: str | None = None
    policy: ApprovalPolicy | None = None
    round: int | None = None
    escalated: bool | None = None
    connection_token: tuple[str, dict[str, Any]] | None = None
    limit: LinkLimit | None = None


class Verdict(NamedTuple):
    """A decision to record: the approver's ``approval`` (None: a rejection) and, when it ends the
    request (the approval that reaches the quorum, or a rejection), the status ``change``. ``who``
    is the decider's key (casefolded address, or principal ARN): one decision per round each.
    ``needed``: the approvals the request needed as read (an approval's write requires it
    unchanged, so that two approvals cannot both be the last); ``round`` the round of the token.
    ``consume``: the token is spent (an emailed link; a connection token stays for other proofs
    until the request ends). ``quorum`` and ``before`` (the approvals as read: the write's
    condition on ``needed`` makes them the ones before this) complete the connection returned."""

    who: str
    round: int
    approval: Approval | None = None
    change: StatusChange | None = None
    needed: int = 1
    consume: bool = True
    proof_signature: str | None = None
    quorum: int = 1
    before: tuple[Approval, ...] = ()
    # The head of the connection's hash chain as the decider knows it (read, or the token's copy).
    chain: ChainHead = ChainHead()

    def pending(self, shown: ShownRequest) -> Connection:
        """The pending connection this verdict is about, as the decider read it."""
        pending = shown.pending().model_copy(update={"quorum": self.quorum, "approvals": list(self.before)})
        return pending.with_chain(self.chain)


class ConnectionStore(Protocol):
    """Connections with their roles, links and history. Every write is one transaction that also
    appends the change's audit event; a lost race raises ``ConnectionAlreadyDecided``."""

    def create(
        self, connection: Connection, connection_token: LinkToken, *, policy: ApprovalPolicy
    ) -> Connection:
        """Store a new request with its live-account lock, connection token and REQUESTED event (the
        first of its chain); returns it as stored. In the same write, the requester
        (``requestedBy``) must be a member of the space with a role that may change it, and the
        account's registered policy must hold ``policy``'s values of what the request copies of it
        (``domain.policy.COPIED_AT_CREATE``: its quorum, its token's principals, its timers).
        Refused, it writes nothing. Raises, in this precedence, ``NotAuthorized`` (as
        ``domain.access.check_space_role`` words it), ``ApproverNotRegistered``,
        ``RegisteredPolicyDiffers`` (with the registered policy: write again with it),
        ``ConnectionAlreadyLive``."""
        ...

    def get(self, connection_id: str) -> Connection:
        """Raises ``ConnectionNotFound``."""
        ...

    def read(self, connection_id: str) -> tuple[Connection, ConnectionSecrets]:
        """The connection and what only the server sees of it. Raises ``ConnectionNotFound``."""
        ...

    def detail(self, connection_id: str) -> tuple[Connection, list[RoleAttachment], list[AuditEvent]]:
        """The connection, its roles and its whole history. Raises ``ConnectionNotFound``."""
        ...

    def detail_page(
        self, connection_id: str, history_limit: int, history_next_token: str | None = None
    ) -> tuple[Connection, list[RoleAttachment], Page[AuditEvent]]:
        """The connection, its roles and one page of at most ``history_limit`` events of its history,
        oldest first, from ``history_next_token`` (a previous page's) on. Raises
        ``ConnectionNotFound``, ``InvalidRequest`` (a token of another connection or query)."""
        ...

    def get_role(self, connection_id: str, role_name: str) -> RoleAttachment | None: ...

    def live_holder(self, space_id: str, account_id: str) -> str | None:
        """The id of the connection that holds the account live in the space, if any."""
        ...

    def list_space(
        self, space_id: str, status: ConnectionStatus | None, limit: int, next_token: str | None
    ) -> Page[Connection]:
        """A space's connections, newest first. Raises ``InvalidRequest`` (a foreign next token)."""
        ...

    def transition(
        self, connection: Connection, change: StatusChange, *, release_live: bool = True
    ) -> Connection:
        """Move ``connection`` (as read: status and version) to ``change.target``. Leaving the live
        statuses frees the account's lock unless ``release_live`` is False (the lock is another's).
        Raises ``ConnectionAlreadyDecided``."""
        ...

    def record_decision(self, shown: ShownRequest, verdict: Verdict, *, token_hash: str) -> Connection:
        """Record one approver's decision on a pending request as shown, in one transaction: the
        token ``token_hash`` still ``ACTIVE`` (spent when ``verdict.consume``), the approver not yet
        decided in this round, the account proof unspent (spent now), the connection pending at the
        shown version and digest in ``verdict.round``; an approval requires the approvals needed to
        be ``verdict.needed`` still and counts down; ``verdict.change`` moves the status too.
        Returns the connection as written. Raises ``ApproverAlreadyDecided``, ``ApprovalsMoved``
        (another approval came first: read again), ``ConnectionAlreadyDecided`` (anything else)."""
        ...

    def replace_links(self, connection: Connection, change: LinkChange, *, revision: int) -> None:
        """Write ``change`` while the connection keeps its status and ``revision`` (as read).
        Raises ``ConnectionAlreadyDecided`` (it moved: read again), ``TooManyLinks`` (``change.limit``
        refuses it, in the same write: two concurrent resends cannot both pass)."""
        ...

    def rotate_connection_token(
        self, connection: Connection, token: LinkToken, *, secrets: ConnectionSecrets, actor: str
    ) -> None:
        """Replace the connection token with ``token`` (a replayed create: only one is ever live),
        while the connection is pending and still holds the connection token and ``revision`` of
        ``secrets`` (as read), and ``actor`` may change its space (the check of ``create``, in the
        same write): store ``token``, retire the old one (``REPLACED``, its copies dropped), point
        the connection at the new one, append CONNECTION_TOKEN_REPLACED. Raises ``NotAuthorized``
        (first), ``ConnectionAlreadyDecided``."""
        ...

    def pending_for_account(self, account_id: str) -> list[Connection]:
        """The account's connections that were pending when read (one Query of the account's
        index partition, filtered on the status, every page)."""
        ...

    def attach_role(self, connection: Connection, attachment: RoleAttachment, *, actor: str) -> None:
        """Record a role check's result (ROLE_ATTACHED, or ROLE_REJECTED with why) while the
        connection keeps its status. Raises ``ConnectionAlreadyDecided``."""
        ...

    def detach_role(self, connection: Connection, role: RoleAttachment, *, actor: str) -> None:
        """Remove a recorded role (ROLE_DETACHED). Raises ``ConnectionAlreadyDecided``."""
        ...


class TokenStore(Protocol):
    def get(self, token_hash: str) -> LinkToken | None: ...


class MemberLookup(Protocol):
    def get_member_role(self, space_id: str, user_id: str) -> SpaceRole | None: ...


class RegistryStore(MemberLookup, Protocol):
    """Spaces, members and administrators; each change is written with its audit event."""

    def put_space(self, space: Space, event: AuditEvent | None = None) -> None: ...

    def get_space(self, space_id: str) -> Space | None: ...

    def put_member(self, member: Member, event: AuditEvent | None = None) -> None:
        """Raises ``SpaceNotFound``."""
        ...

    def delete_member(self, space_id: str, user_id: str, event: AuditEvent | None = None) -> bool:
        """False when there was no such member (nothing is written)."""
        ...

    def put_approver(self, approver: Approver, event: AuditEvent | None = None) -> None: ...

    def get_approver(self, account_id: str) -> Approver | None: ...

    def delete_approver(self, account_id: str, event: AuditEvent | None = None) -> bool:
        """False when there was none (nothing is written)."""
        ...

    def list_approvers(self, limit: int, next_token: str | None) -> Page[Approver]: ...

    def approvers_with_email(self, email: str) -> list[Approver]:
        """Every account whose policy names ``email`` (an approver or an escalation's address)."""
        ...

    # The guarded registry: each write is conditional on what was read, and a lost race raises
    # ``RegistryConflict`` with nothing written.

    def get_subscription(self, email: str) -> AddressSubscription | None:
        """The address's subscription record (None: none stored yet)."""
        ...

    def register_approver(
        self,
        approver: Approver,
        event: AuditEvent,
        *,
        replacing: Approver | None,
        serving: list[AddressSubscription],
        released: list[AddressSubscription],
    ) -> None:
        """Store ``approver`` while the account's registration is still ``replacing`` (None: none),
        with the address records it changes (``serving``: those of every address of the policy,
        each with the account; ``released``: those of the replaced policy's addresses that the new
        one drops, each without it), each while still at the version it was read at, and the
        event, in one transaction. Raises ``RegistryConflict``."""
        ...

    def unregister_approver(
        self, approver: Approver, event: AuditEvent, *, released: list[AddressSubscription]
    ) -> None:
        """Remove the registration while it is still ``approver``, with its addresses' records
        (``released``: each without the account) while still at the version read, and the event.
        Raises ``RegistryConflict``."""
        ...

    def save_subscription(self, subscription: AddressSubscription) -> AddressSubscription:
        """Store the record while still at its version; returns it at its new version. Raises
        ``RegistryConflict``."""
        ...

    def forget_subscription(self, subscription: AddressSubscription) -> None:
        """Delete the record while still at its version. Raises ``RegistryConflict``."""
        ...


class AuditLog(Protocol):
    """The auditors' reads: each page one query, never a scan."""

    def query_connections(
        self, query: ConnectionQuery, limit: int, next_token: str | None
    ) -> Page[Connection]:
        """Raises ``InvalidRequest`` (a foreign next token)."""
        ...

    def query_events(self, query: EventQuery, limit: int, next_token: str | None) -> Page[AuditEvent]:
        """Raises ``InvalidRequest`` (a foreign next token)."""
        ...

    def export_events(
        self, at_from: str | None, at_to: str | None, limit: int, next_token: str | None
    ) -> Page[AuditEvent]:
        """Every event of every chain in the range, oldest first (so each chain in ``seq`` order:
        its times only grow), one Query a page. Raises ``InvalidRequest`` (a foreign next token)."""
        ...


class Workflow(Protocol):
    """The approval workflow: start an execution, answer or cancel its waiting task."""

    def start(self, connection_id: str, payload: dict[str, Any]) -> str:
        """Idempotent per connection id; returns the execution's ARN."""
        ...

    def succeed(self, task_token: str, output: dict[str, Any]) -> None:
        """Raises ``TaskAlreadyClosed``."""
        ...

    def fail(self, task_token: str, error: str, cause: str) -> None:
        """Raises ``TaskAlreadyClosed``."""
        ...


class Mailer(Protocol):
    def send(self, account_id: str, recipients: list[str], subject: str, body: str) -> str:
        """Email ``recipients``, approvers of the account (each address's subscription lets through
        only the messages that name it); returns the message id. Raises ``DependencyUnavailable``."""
        ...


class Subscriptions(Protocol):
    """Administrators' email subscriptions, each filtered to the accounts the address serves."""

    def subscribe(self, email: str) -> str | None:
        """The address's subscription (SNS keeps one per address: a second call finds the same),
        made with a filter that lets no message through until ``set_accounts``; its ARN, or None
        if SNS withholds it. Raises ``RegistryConflict`` when the address's subscription exists
        with another filter already (another operator got there first: read again)."""
        ...

    def set_accounts(self, subscription_arn: str, email: str, account_ids: list[str]) -> bool:
        """Let through the messages of exactly ``account_ids`` that name ``email`` a recipient;
        False when the subscription is gone."""
        ...

    def unsubscribe(self, subscription_arn: str | None) -> bool: ...


class ProofVerifier(Protocol):
    def verify(self, proof: AccountProof, connection_id: str) -> tuple[CallerIdentity, str]:
        """Who signed ``proof`` for ``connection_id``, and its signature. Raises
        ``AccountProofRefused`` and ``DependencyUnavailable``."""
        ...


class AccountRoles(Protocol):
    def get_role(self, role_name: str) -> dict[str, Any] | None:
        """The role as ``iam:GetRole`` returns it, or None. Raises ``DependencyUnavailable`` and
        ``RoleCheckFailed``."""
        ...


class RoleVerifier(Protocol):
    def open(self, partition: str, account_id: str) -> AccountRoles:
        """Raises ``RoleCheckFailed`` (the verifier role cannot be assumed) and ``DependencyUnavailable``."""
        ...


class DigestStore(Protocol):
    """The signed digests of the audit trail, a chain of their own (docs/audit.md, "Digests")."""

    def latest(self) -> Digest | None:
        """The newest digest, read consistently; None before the first."""
        ...

    def append(self, digest: Digest) -> None:
        """Store ``digest`` after the newest one (the one its ``previousHash`` names, or none).
        Raises ``DigestRaced`` when another digest was stored since."""
        ...

    def digests(
        self, at_from: str | None, at_to: str | None, limit: int, next_token: str | None
    ) -> Page[Digest]:
        """The digests whose whole period is in the range (the first digest, which has no
        ``from``, only without ``at_from``), oldest first, one Query a page. Raises
        ``InvalidRequest`` (a foreign next token)."""
        ...


class Signer(Protocol):
    """The digests' signing key (KMS, asymmetric)."""

    key_id: str

    def sign(self, message: bytes) -> bytes:
        """RSASSA-PSS SHA-256 signature of ``message``. Raises ``DependencyUnavailable``."""
        ...

    def public_key_pem(self) -> str:
        """The public half, PEM (SubjectPublicKeyInfo). Raises ``DependencyUnavailable``."""
        ...
