"""Run the API endpoint with uvicorn in the foreground, with the services started and stopped around it."""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType

import uvicorn

from openmwaa.app import Services, create_app
from openmwaa.settings import Settings
from openmwaa.webserver.tls import TlsFiles

log = logging.getLogger(__name__)


class _ForegroundServer(uvicorn.Server):
    """uvicorn, minus re-raising the stop signal after shutdown.

    uvicorn re-raises SIGTERM/SIGINT once it has stopped serving, which would kill the process
    before openmwaa has stopped the environments' Airflow processes. Here the handler only sets
    the flag; ``Server.run`` stops the environments and returns.
    """

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.should_exit and sig == signal.SIGINT:
            self.force_exit = True
        self.should_exit = True


class Server:
    """uvicorn owns the signals (Ctrl-C, SIGTERM); when it returns, every environment is stopped.

    With ``tls_port`` set, a second uvicorn serves HTTPS in a thread: its own app (built by the
    same ``create_app``, so its own upstream connections and event loop) over the same services.
    """

    def __init__(self, settings: Settings, services: Services) -> None:
        self._settings = settings
        self._services = services
        config = uvicorn.Config(
            create_app(settings, services),
            host=settings.host,
            port=settings.port,
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=5,
        )
        self._server = _ForegroundServer(config)
        self._tls_server: uvicorn.Server | None = None
        if settings.tls_port is not None:
            tls = _certificate(settings, services)
            self._tls_server = uvicorn.Server(
                uvicorn.Config(
                    create_app(settings, services),
                    host=settings.host,
                    port=settings.tls_port,
                    log_level="warning",
                    access_log=False,
                    lifespan="off",
                    timeout_graceful_shutdown=5,
                    ssl_certfile=str(tls.certfile),
                    ssl_keyfile=str(tls.keyfile),
                    server_header=False,
                )
            )

    @property
    def started(self) -> bool:
        return bool(self._server.started)

    def run(self, on_ready: Callable[[], None] | None = None) -> int:
        self._services.start()
        tls_thread = None
        try:
            if self._tls_server is not None:
                tls_thread = threading.Thread(target=self._tls_server.run, name="api-https", daemon=True)
                tls_thread.start()
            if on_ready is not None:
                threading.Thread(target=self._when_ready, args=(on_ready,), daemon=True).start()
            self._server.run()
        finally:
            if self._tls_server is not None and tls_thread is not None:
                self._tls_server.should_exit = True
                tls_thread.join(timeout=10)
            log.info("stopping environments")
            self._services.shutdown()
        return 0 if self._server.started else 1

    def stop(self) -> None:
        self._server.should_exit = True
        if self._tls_server is not None:
            self._tls_server.should_exit = True

    def _when_ready(self, on_ready: Callable[[], None]) -> None:
        deadline = time.monotonic() + 30
        while not self._server.started and time.monotonic() < deadline and not self._server.should_exit:
            time.sleep(0.05)
        if self._server.started:
            try:
                on_ready()
            except Exception:
                log.exception("start-up task failed")


def _certificate(settings: Settings, services: Services) -> TlsFiles:
    if settings.tls_cert_file is not None and settings.tls_key_file is not None:
        return TlsFiles(settings.tls_cert_file, settings.tls_key_file, ca_file=None)
    return services.webservers.server_certificate()
