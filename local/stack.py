"""The local stack as one object: start it, use it, stop it.

    with LocalStack(port=0) as stack:      # 0: a free port
        token = stack.token("alice")
        ...                                # HTTP to stack.url

One stack per process: moto's state and its server port (``MOTO_PORT``) are process-wide. To
run several, or to keep the stack apart from the caller, use ``local.process.StackProcess``.
"""

from __future__ import annotations

import logging
import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from local.deploy import deploy
from local.deployed import DeployedStack
from local.front import Front, Reply
from local.identity import TokenIssuer
from local.lambda_runtime import WORKER_IDLE_SECONDS, LambdaRuntime, install_moto_hook
from local.moto_server import MotoServer
from local.outbox import Outbox
from local.scheduler import Schedule, Scheduler, read_schedules
from local.seed import seed_api, seed_iam
from local.seed_data import ADMIN_ROLE, SEED, USERS
from local.template import REGION, ROOT, load_sam, translate
from local.verify import check_stack

log = logging.getLogger(__name__)

LOCAL_AUDIENCE = "account-connections-local"
STATE_DIR = ROOT / ".local-stack"
ADMIN_SESSION_NAME = "local-stack-admin"
ACCOUNT_ID_PATTERN = re.compile(r"[0-9]{12}")
# The digest job's settle time (the template's DigestSettleSeconds, 60 s by default): how long
# before a run its period ends, longer than any write takes to commit and reach the events'
# index. Locally, writes commit in milliseconds and moto's indexes are updated with the item, so
# 5 s is ample, and a digest covers events a few seconds old.
LOCAL_DIGEST_SETTLE_SECONDS = 5

Progress = Callable[[str], None]


class LocalStack:
    """The whole service from template.yaml: moto, the functions' workers, the HTTP front."""

    def __init__(
        self,
        port: int = 3000,
        *,
        approval_timeout_seconds: int | None = None,
        digest_settle_seconds: int | None = None,
        schedule_interval_seconds: float | None = None,
        max_workers_per_function: int = 4,
        worker_idle_seconds: float | None = WORKER_IDLE_SECONDS,
        state_dir: Path = STATE_DIR,
        progress: Progress | None = None,
    ) -> None:
        """``schedule_interval_seconds`` replaces the interval of every scheduled rule (``None``:
        the template's); ``digest_settle_seconds`` the local ``DigestSettleSeconds``;
        ``worker_idle_seconds`` how long a function's worker may stay idle before it is stopped
        (its last one is kept; ``None``: never)."""
        if schedule_interval_seconds is not None and not schedule_interval_seconds > 0:
            raise ValueError(f"schedule_interval_seconds must be positive, not {schedule_interval_seconds}")
        self.requested_port = port
        self.approval_timeout_seconds = approval_timeout_seconds
        self.digest_settle_seconds = digest_settle_seconds
        self.schedule_interval_seconds = schedule_interval_seconds
        self.max_workers_per_function = max_workers_per_function
        self.worker_idle_seconds = worker_idle_seconds
        self.state_dir = state_dir
        self.progress: Progress = progress or (lambda message: log.info("%s", message))
        self.outbox = Outbox()
        self.front: Front | None = None
        self.moto: MotoServer | None = None
        self.runtime: LambdaRuntime | None = None
        self.deployed: DeployedStack | None = None
        self.issuer: TokenIssuer | None = None
        self.schedules: list[Schedule] = []
        self.scheduler: Scheduler | None = None
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
    def aws_endpoint(self) -> str:
        """The emulated AWS (moto): for boto3's ``endpoint_url`` or ``aws --endpoint-url``."""
        assert self.moto is not None, "start() first"
        return self.moto.endpoint

    @property
    def log_dir(self) -> Path:
        return self.state_dir / str(self.port) / "logs"

    def token(self, user_id: str) -> str:
        """A JWT for a seeded user; raises KeyError for anyone else."""
        assert self.issuer is not None, "start() first"
        user = USERS[user_id]
        return self.issuer.issue(user.user_id, list(user.groups))

    def aws_credentials(self, account_id: str) -> dict[str, str]:
        """Temporary credentials of the role ``Admin`` of a seeded account, issued by the
        emulated STS (``sts:AssumeRole``); raises KeyError for an account that is not seeded."""
        assert self.deployed is not None, "start() first"
        if account_id not in SEED.accounts:
            raise KeyError(account_id)
        credentials = self.deployed.client("sts").assume_role(
            RoleArn=f"arn:aws:iam::{account_id}:role/{ADMIN_ROLE}", RoleSessionName=ADMIN_SESSION_NAME
        )["Credentials"]
        return {
            "AccessKeyId": credentials["AccessKeyId"],
            "SecretAccessKey": credentials["SecretAccessKey"],
            "SessionToken": credentials["SessionToken"],
            "endpoint": self.aws_endpoint,
        }

    # ---- lifecycle -------------------------------------------------------------------------

    def start(self) -> LocalStack:
        """Start everything; raises ``PortInUse``, ``ParameterError``, ``DeployError``,
        ``StackMismatch``, ``ScheduleError`` or ``SeedError`` (after stopping what had started)."""
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _parameters(self, declared: dict[str, object], issuer_url: str) -> dict[str, str]:
        """The parameter overrides of the local deploy: the JWT issuer and audience of
        ``/_local``; the stack's own address as the public base URL of the links in emails, and
        the emulated STS as the endpoint account proofs are sent to, the local digest settle time
        (each only if the template declares it); the approval window and the settle time if one
        was given."""
        assert self.moto is not None
        parameters = {"JwtIssuer": issuer_url, "JwtAudience": LOCAL_AUDIENCE}
        optional = {
            "PublicBaseUrl": self.url,
            "StsEndpointUrl": f"{self.moto.endpoint}/",
            "DigestSettleSeconds": str(LOCAL_DIGEST_SETTLE_SECONDS),
        }
        parameters.update((name, value) for name, value in optional.items() if name in declared)
        if self.approval_timeout_seconds is not None:
            parameters["ApprovalTimeoutSeconds"] = str(self.approval_timeout_seconds)
        if self.digest_settle_seconds is not None:
            parameters["DigestSettleSeconds"] = str(self.digest_settle_seconds)
        return parameters

    def _start(self) -> None:
        self.front = Front(self.requested_port)  # first: a taken port stops us before any work
        issuer_url = f"{self.url}/_local"
        started = time.monotonic()
        # Before the translation: the emulated STS's address is one of the parameters.
        self.progress("Starting moto (server mode, state machine execution on)")
        self.moto = MotoServer(REGION)
        self.moto.start()
        self._undo.append(self.outbox.install())

        self.progress("Translating template.yaml (SAM -> CloudFormation)")
        parameters = self._parameters(load_sam().get("Parameters", {}), issuer_url)
        template = translate(parameters)

        self.progress(f"Deploying {len(template.resources())} resources into moto's CloudFormation")
        self.deployed = deploy(template, parameters, self.moto.endpoint)

        self.progress("Checking every declared resource against the template")
        log_dir = self.log_dir
        shutil.rmtree(log_dir, ignore_errors=True)
        self.runtime = LambdaRuntime(
            self.deployed.functions,
            self.moto.endpoint,
            log_dir,
            self.max_workers_per_function,
            self.worker_idle_seconds,
        )
        self._undo.append(install_moto_hook(self.runtime))
        check_stack(self.deployed)
        # Read before the front answers: a schedule the local stack cannot fire stops the start.
        self.schedules = read_schedules(self.deployed, self.schedule_interval_seconds)
        for schedule in self.schedules:
            self.progress(f"Schedule {schedule.describe()}")

        self.issuer = TokenIssuer(issuer_url, LOCAL_AUDIENCE, self.deployed.parameter("GroupsClaim"))
        self.front.configure(self.deployed.routes, self.runtime, self.issuer, self._local_routes())

        self.progress("Seeding: IAM roles (Admin in each account), space demo, members, administrator")
        seed_iam(self.deployed)
        seed_api(self.front, self.issuer)
        # Only now does the port answer: once /health does, the stack is seeded and ready.
        self.front.start()
        self.scheduler = Scheduler(self.schedules, self.runtime)
        self.scheduler.start()
        self.progress(f"Up in {time.monotonic() - started:.1f} s")

    def stop(self) -> None:
        """Stop the schedules, the front, the workers and moto; safe to call more than once."""
        if self.scheduler is not None:
            self.scheduler.stop()
            self.scheduler = None
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

        def aws_credentials(query: dict[str, str]) -> Reply:
            account_id = query.get("account", "")
            if not ACCOUNT_ID_PATTERN.fullmatch(account_id):
                detail = "account must be a twelve-digit AWS account ID, e.g. ?account=111122223333"
                return Reply.problem(400, "Bad Request", detail)
            try:
                credentials = self.aws_credentials(account_id)
            except KeyError:
                detail = f"account {account_id} is not seeded; seeded: {', '.join(SEED.accounts)}"
                return Reply.problem(404, "Not Found", detail)
            reply = Reply.json(200, credentials)
            reply.headers.append(("Cache-Control", "no-store"))
            return reply

        return {
            "/_local/token": token,
            "/_local/aws-credentials": aws_credentials,
            "/_local/outbox": lambda query: Reply.json(200, self.outbox.as_json()),
            "/_local/outbox.html": outbox_html,
            "/_local/.well-known/openid-configuration": lambda query: Reply.json(
                200, issuer.openid_configuration()
            ),
            "/_local/.well-known/jwks.json": lambda query: Reply.json(200, issuer.jwks()),
        }
