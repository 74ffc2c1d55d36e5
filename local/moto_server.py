"""moto in server mode, in this process, on a free port of 127.0.0.1.

In this process because the Lambda hook (``local.lambda_runtime``) replaces a method of moto's
backend, which only works where that backend lives; in server mode because the handlers (in
their own processes) and the state machine engine reach AWS over HTTP, as in AWS.

moto's application is wrapped in ``local.sts_signature.StsSignatureCheck``: STS requests signed
with credentials the emulated STS issued have their SigV4 signature checked as AWS checks it
(moto checks none), so an account proof means locally what it means in AWS.

Before it starts, moto is patched where it is wrong or slow under concurrent requests, each fix
in a module of its own:

- DynamoDB transactions serialized with item-level rollback (``local.dynamodb_transactions``);
- a transaction sent again with its ``ClientRequestToken`` (an SDK retry) not applied twice
  (``local.dynamodb_client_tokens``);
- a Query reading its partition, not the whole table (``local.dynamodb_queries``);
- condition and update expressions parsed once, not two or three times per operation
  (``local.dynamodb_expressions``);
- an update expression's checks that depend on its text alone made once per text
  (``local.dynamodb_update_checks``);
- items' attribute values written to responses as they are, not member by member
  (``local.dynamodb_responses``);
- an item built with one size check, not one per attribute (``local.dynamodb_items``);
- requests dispatched without listing moto's package folder (``local.moto_dispatch``);
- a request's handler method found without listing its class's members (``local.moto_actions``);
- a state machine's definition parsed once rather than for every execution
  (``local.stepfunctions_programs``);
- its steps' JSONPaths parsed and AWS clients made once rather than for every step
  (``local.stepfunctions_reuse``).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import urllib.request

from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server

from local import (
    dynamodb_client_tokens,
    dynamodb_expressions,
    dynamodb_items,
    dynamodb_queries,
    dynamodb_responses,
    dynamodb_transactions,
    dynamodb_update_checks,
    moto_actions,
    moto_dispatch,
    stepfunctions_programs,
    stepfunctions_reuse,
)
from local.sts_signature import StsSignatureCheck

ACCOUNT_ID = "123456789012"
# What every AWS client of the local stack signs with: moto accepts anything, AWS nothing. Not
# shaped like an AWS key, so the emulated STS does not check its signature (local.sts_signature).
DUMMY_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "local-stack",
    "AWS_SECRET_ACCESS_KEY": "local-stack",
}
MOTO_CONFIG = {
    "stepfunctions": {"execute_state_machine": True},
    "lambda": {"use_docker": False},
}


class MotoServer(ThreadedMotoServer):
    """moto's threaded server that reports a bind failure instead of hanging in ``start()``, and
    checks the signatures of STS requests signed with keys it issued, as STS in ``region`` does."""

    def __init__(self, region: str) -> None:
        super().__init__(ip_address="127.0.0.1", port=0, verbose=False)
        self.region = region
        self._error: BaseException | None = None

    def _server_entry(self) -> None:
        try:
            app = StsSignatureCheck(DomainDispatcherApplication(create_backend_app), self.region)
            self._server = make_server(
                self._ip_address, self._port, app, threaded=True, request_handler=MotoRequestHandler
            )
        except BaseException as exc:  # reported by start()
            self._error = exc
            self._server_ready_event.set()
            return
        self._server_ready_event.set()
        self._server.serve_forever()

    def start(self) -> None:
        dynamodb_transactions.install()
        dynamodb_client_tokens.install()
        dynamodb_queries.install()
        dynamodb_expressions.install()
        dynamodb_update_checks.install()
        dynamodb_responses.install()
        dynamodb_items.install()
        moto_dispatch.install()
        moto_actions.install()
        stepfunctions_programs.install()
        stepfunctions_reuse.install()
        # One line per AWS call would drown the stack's own output.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self._thread = threading.Thread(target=self._server_entry, name="moto-server", daemon=True)
        self._thread.start()
        self._server_ready_event.wait()
        if self._error is not None:
            raise RuntimeError(f"moto could not start: {self._error}") from self._error
        # The state machine engine calls AWS services at localhost:$MOTO_PORT.
        os.environ["MOTO_PORT"] = str(self.port)
        self._configure()

    @property
    def port(self) -> int:
        return self.get_host_and_port()[1]

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _configure(self) -> None:
        """Start from empty backends (moto's state is process-wide: a stack started before in
        this process leaves its own), then turn on state machine execution and Lambda without
        Docker (both off by default)."""
        self._post("/moto-api/reset", None)
        self._post("/moto-api/config", MOTO_CONFIG)

    def _post(self, path: str, body: object) -> None:
        request = urllib.request.Request(
            f"{self.endpoint}{path}",
            data=json.dumps(body).encode() if body is not None else b"",
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
