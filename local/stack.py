"""The local stack as one object: start it, use it, stop it.

    with LocalStack(port=0) as stack:      # 0: a free port
        token = stack.token("alice")
        ...                                # HTTP to stack.url

One stack per process: moto's state and its server port (``MOTO_PORT``) are process-wide. To
run several, or to keep the stack apart from the caller, use ``local.process.StackProcess``.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from local.deploy import deploy
from local.deployed import DeployedStack
from local.front import Front, Reply
from local.identity import TokenIssuer
from local.lambda_runtime import LambdaRuntime, install_moto_hook
from local.moto_server import MotoServer
from local.outbox import Outbox
from local.seed import seed_api, seed_iam
from local.seed_data import USERS
from local.template import ROOT, translate
from local.verify import check_stack

log = logging.getLogger(__name__)

LOCAL_AUDIENCE = "account-connections-local"
STATE_DIR = ROOT / ".local-stack"

Progress = Callable[[str], None]


class LocalStack:
    """The whole service from template.yaml: moto, the functions' workers, the HTTP front."""

    def __init__(
        self,
        port: int = 3000,
        *,
        approval_timeout_seconds: int | None = None,
        max_workers_per_function: int = 4,
        state_dir: Path = STATE_DIR,
        progress: Progress | None = None,
    ) -> None:
        self.requested_port = port
        self.approval_timeout_seconds = approval_timeout_seconds
        self.max_workers_per_function = max_workers_per_function
        self.state_dir = state_dir
        self.progress: Progress = progress or (lambda message: log.info("%s", message))
        self.outbox = Outbox()
        self.front: Front | None = None
        self.moto: MotoServer | None = None
        self.runtime: LambdaRuntime | None = None
        self.deployed: DeployedStack | None = None
        self.issuer: TokenIssuer | None = None
        self._undo: list[Callable[[], None]] = []

    # ---- what callers use ----------------------------------------------------------------

    @property
    def port(self) -> int:
        assert self.front is not None, "start() first"
        return self.front.port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_dir(self) -> Path:
        return self.state_dir / str(self.port) / "logs"

    def token(self, user_id: str) -> str:
        """A JWT for a seeded user; raises KeyError for anyone else."""
        assert self.issuer is not None, "start() first"
        user = USERS[user_id]
        return self.issuer.issue(user.user_id, list(user.groups))

    # ---- lifecycle -------------------------------------------------------------------------

    def start(self) -> LocalStack:
        """Start everything; raises ``PortInUse``, ``ParameterError``, ``DeployError``,
        ``StackMismatch`` or ``SeedError`` (after stopping what had started)."""
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        self.front = Front(self.requested_port)  # first: a taken port stops us before any work
        issuer_url = f"{self.url}/_local"
        parameters = {"JwtIssuer": issuer_url, "JwtAudience": LOCAL_AUDIENCE}
        if self.approval_timeout_seconds is not None:
            parameters["ApprovalTimeoutSeconds"] = str(self.approval_timeout_seconds)

        started = time.monotonic()
        self.progress("Translating template.yaml (SAM -> CloudFormation)")
        template = translate(parameters)

        self.progress("Starting moto (server mode, state machine execution on)")
        self.moto = MotoServer()
        self.moto.start()
        self._undo.append(self.outbox.install())

        self.progress(f"Deploying {len(template.resources())} resources into moto's CloudFormation")
        self.deployed = deploy(template, parameters, self.moto.endpoint)

        self.progress("Checking every declared resource against the template")
        log_dir = self.log_dir
        shutil.rmtree(log_dir, ignore_errors=True)
        self.runtime = LambdaRuntime(
            self.deployed.functions, self.moto.endpoint, log_dir, self.max_workers_per_function
        )
        self._undo.append(install_moto_hook(self.runtime))
        check_stack(self.deployed)

        self.issuer = TokenIssuer(issuer_url, LOCAL_AUDIENCE, self.deployed.parameter("GroupsClaim"))
        self.front.configure(self.deployed.routes, self.runtime, self.issuer, self._local_routes())

        self.progress("Seeding: IAM roles in 111122223333, space demo, members, administrator")
        seed_iam(self.deployed)
        seed_api(self.front, self.issuer)
        # Only now does the port answer: once /health does, the stack is seeded and ready.
        self.front.start()
        self.progress(f"Up in {time.monotonic() - started:.1f} s")

    def stop(self) -> None:
        """Stop the front, the workers and moto; safe to call more than once."""
        if self.front is not None:
            self.front.stop()
            self.front = None
        if self.runtime is not None:
            self.runtime.close()
            self.runtime = None
        while self._undo:
            self._undo.pop()()
        if self.moto is not None:
            self.moto.stop()
            self.moto = None

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    # ---- /_local ---------------------------------------------------------------------------

    def _local_routes(self) -> dict[str, Callable[[dict[str, str]], Reply]]:
        assert self.issuer is not None
        issuer = self.issuer

        def token(query: dict[str, str]) -> Reply:
            user_id = query.get("sub", "")
            if user_id not in USERS:
                return Reply.json(404, {"message": f"no seeded user {user_id!r}", "users": sorted(USERS)})
            return Reply.json(200, {"token": self.token(user_id)})

        def outbox_html(query: dict[str, str]) -> Reply:
            headers = [("Content-Type", "text/html; charset=utf-8"), ("Cache-Control", "no-store")]
            return Reply(200, self.outbox.as_html().encode(), headers)

        return {
            "/_local/token": token,
            "/_local/outbox": lambda query: Reply.json(200, self.outbox.as_json()),
            "/_local/outbox.html": outbox_html,
            "/_local/.well-known/openid-configuration": lambda query: Reply.json(
                200, issuer.openid_configuration()
            ),
            "/_local/.well-known/jwks.json": lambda query: Reply.json(200, issuer.jwks()),
        }
