"""``POST /aws_mwaa/cli``: HTTP in and out for :class:`~openmwaa.services.cli_commands.CliService`.

``Authorization: Bearer <CliToken>``, body = an allowed Airflow CLI command (UTF-8 text, without
``airflow``); the answer is ``{"stdout": base64, "stderr": base64}``. The service checks the token,
the environment's status and the command; its errors are answered with their status and
``{"detail": message}``.
"""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable
from typing import Final

from openmwaa.errors import OpenMwaaError
from openmwaa.request_body import read_body
from openmwaa.services.cli_commands import CliService
from openmwaa.store.environments import EnvironmentRecord
from openmwaa.webserver.asgi import Receive, Scope, Send, bearer_token, respond_json

#: Bound on the command text (the service refuses anything longer than its own, smaller limit).
MAX_COMMAND_BODY: Final = 16 * 1024


class CliEndpoint:
    """One environment's CLI route; ``record`` looks the environment up (None: it does not exist)."""

    def __init__(
        self,
        name: str,
        cli: CliService,
        record: Callable[[], Awaitable[EnvironmentRecord | None]],
    ) -> None:
        self._name = name
        self._cli = cli
        self._record = record

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] != "POST":
            return await respond_json(send, 405, {"detail": "Use POST."}, headers=[("allow", "POST")])
        token = bearer_token(scope)
        if token is None:
            return await respond_json(send, 401, {"detail": "Send 'Authorization: Bearer <CliToken>'."})
        record = await self._record()
        if record is None:
            return await respond_json(send, 404, {"detail": f"Environment {self._name} does not exist."})
        try:
            text = (await read_body(receive, MAX_COMMAND_BODY)).decode("utf-8")
        except UnicodeDecodeError:
            return await respond_json(send, 400, {"detail": "The command must be UTF-8 text."})
        try:
            result = await self._cli.run_with_token(record, token, text)
        except OpenMwaaError as exc:
            return await respond_json(send, exc.status, {"detail": exc.message})
        await respond_json(
            send,
            200,
            {
                "stdout": base64.b64encode(result.stdout).decode(),
                "stderr": base64.b64encode(result.stderr).decode(),
            },
        )
