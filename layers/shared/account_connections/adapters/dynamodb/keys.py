"""Where every item lives in the state table: keys ``pk``/``sk`` and four overloaded indexes
(docs/architecture.md, "The state table", has the whole layout).

=========  ============================  ===================================================
index      connection item               other items
=========  ============================  ===================================================
GSI1       SPACE#<space> / <created>#id  event: ACTOR#<actor> / <at>#<id>#<version>
GSI2       ACCOUNT#<acct> / <created>#id
GSI3       STATUS#<status> / <created>#id
GSI4       ALL#CONNECTION / <created>#id event: ALL#EVENT / <at>#..., approver: ALL#APPROVER / acct
=========  ============================  ===================================================

Items by partition: ``CONNECTION#<id>`` holds the connection (``CONNECTION``), its roles
(``ROLE#<name>``), its events (``EVENT#<at>#<id>``) and its approvers' decisions
(``VOTE#<round>#<approver>``: one each per round); ``LIVE#<space>#<account>`` the lock of the
account's live connection; ``TOKEN#<sha256>`` a link or connection token; ``SPACE#<id>`` the space
(``SPACE``) and its members (``MEMBER#<user>``); ``APPROVER#<account>`` the administrator;
``SUBSCRIPTION#<email>`` an administrator's address: its SNS subscription and the accounts it
serves; ``REGISTRY#SPACE#<id>`` / ``REGISTRY#ACCOUNT#<id>`` the registry's events and their chain's head
(``CHAIN``); ``PROOF#<signature>``
an account proof spent on a decision;
``IDEMPOTENCY#create_connection`` powertools' idempotency records; ``DIGEST`` the signed audit
digests (``DIGEST#<to>``) and their head (``HEAD``).
"""

from __future__ import annotations

CONNECTION_SK = "CONNECTION"
# In a connection's partition, sort keys run CONNECTION < EVENT#... < ROLE#...
EVENT_PREFIX = "EVENT#"
ROLE_PREFIX = "ROLE#"
ALL_CONNECTIONS = "ALL#CONNECTION"
ALL_EVENTS = "ALL#EVENT"
ALL_APPROVERS = "ALL#APPROVER"

Key = dict[str, str]


def connection_pk(connection_id: str) -> str:
    return f"CONNECTION#{connection_id}"


def connection_key(connection_id: str) -> Key:
    return {"pk": connection_pk(connection_id), "sk": CONNECTION_SK}


def live_key(space_id: str, account_id: str) -> Key:
    return {"pk": f"LIVE#{space_id}#{account_id}", "sk": "LIVE"}


def token_key(token_hash: str) -> Key:
    return {"pk": f"TOKEN#{token_hash}", "sk": "TOKEN"}


def role_key(connection_id: str, role_name: str) -> Key:
    return {"pk": connection_pk(connection_id), "sk": f"{ROLE_PREFIX}{role_name}"}


def vote_key(connection_id: str, approval_round: int, who: str) -> Key:
    """An approver's decision of a request in a round: one each (``VOTE#`` sorts after ``ROLE#``,
    outside the history's and the roles' ranges)."""
    return {"pk": connection_pk(connection_id), "sk": f"VOTE#{approval_round}#{who}"}


def proof_key(signature: str) -> Key:
    """An account proof spent on a decision: a proof is good for one."""
    return {"pk": f"PROOF#{signature}", "sk": "PROOF"}


def space_key(space_id: str) -> Key:
    return {"pk": f"SPACE#{space_id}", "sk": "SPACE"}


def member_key(space_id: str, user_id: str) -> Key:
    return {"pk": f"SPACE#{space_id}", "sk": f"MEMBER#{user_id}"}


def approver_key(account_id: str) -> Key:
    return {"pk": f"APPROVER#{account_id}", "sk": "APPROVER"}


def subscription_key(email: str) -> Key:
    """An administrator's address: its one SNS subscription and the accounts it serves."""
    return {"pk": f"SUBSCRIPTION#{email}", "sk": "SUBSCRIPTION"}
