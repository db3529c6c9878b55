"""Start and stop each environment's web endpoint: one uvicorn server per environment, in its own thread.

Each environment listens on its own port of the loopback address (``WebServerHostname`` is
``127.0.0.1:<port>``), so nothing needs DNS: a separate server per environment keeps one
environment's slow proxy traffic, TLS handshakes or crash away from the others, and stopping an
environment simply stops its server. HTTPS by default with openmwaa's local CA (``webserver.tls``)
or a certificate the operator supplies; plain HTTP when TLS is switched off.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import uvicorn

from openmwaa.store.environments import EnvironmentRecord
from openmwaa.webserver.app import EnvironmentWebApp, WebDependencies
from openmwaa.webserver.port_registry import PortRegistry
from openmwaa.webserver.tls import DEFAULT_HOSTS, TlsFiles, ensure_local_tls

log = logging.getLogger(__name__)

START_TIMEOUT_SECONDS = 15.0


@dataclass(frozen=True)
class WebServerConfig:
    #: Address the endpoints listen on.
    host: str = "127.0.0.1"
    #: Ports handed to environments, inclusive.
    port_first: int = 8760
    port_last: int = 8859
    tls: bool = True
    #: An operator-supplied certificate and key (PEM) instead of the local CA's.
    cert_file: Path | None = None
    key_file: Path | None = field(default=None, repr=False)
    #: The host name put in ``WebServerHostname`` (default: ``host``, or 127.0.0.1 for a wildcard).
    public_host: str | None = None


@dataclass
class _Endpoint:
    port: int
    server: uvicorn.Server
    thread: threading.Thread
    app: EnvironmentWebApp


class WebServerManager:
    def __init__(self, data_dir: Path, config: WebServerConfig, deps: WebDependencies) -> None:
        self._data_dir = data_dir
        self._config = config
        self._deps = deps
        self._ports = PortRegistry(
            data_dir / "webserver" / "ports.json", first=config.port_first, last=config.port_last
        )
        self._running: dict[str, _Endpoint] = {}
        self._lock = threading.Lock()
        self._tls: TlsFiles | None = None
        self._tls_lock = threading.Lock()  # not ``_lock``: ``_start`` asks for it while holding that

    # Queries ---------------------------------------------------------------------------

    @property
    def scheme(self) -> str:
        return "https" if self._config.tls else "http"

    def tls_files(self) -> TlsFiles | None:
        """The certificate in use (created on first call), or None when TLS is off."""
        if not self._config.tls:
            return None
        return self.server_certificate()

    def server_certificate(self) -> TlsFiles:
        """The configured certificate, else the local CA's (created on first call), TLS on or off.

        The API's own HTTPS listener uses it too: one certificate file for the same host names,
        never two callers renewing ``tls/server.pem`` for different ones.
        """
        with self._tls_lock:
            if self._tls is None:
                if self._config.cert_file and self._config.key_file:
                    self._tls = TlsFiles(self._config.cert_file, self._config.key_file, ca_file=None)
                else:
                    self._tls = ensure_local_tls(self._data_dir, self._cert_hosts())
            return self._tls

    def hostname(self, key: str) -> str | None:
        """``host:port`` of the environment's endpoint (running, or remembered from before)."""
        with self._lock:
            endpoint = self._running.get(key)
            port = endpoint.port if endpoint else self._ports.port(key)
        return f"{self._display_host()}:{port}" if port is not None else None

    # Lifecycle -------------------------------------------------------------------------

    def ensure(self, record: EnvironmentRecord) -> str:
        """Have the environment's endpoint running (idempotent); its ``WebServerHostname``."""
        key = str(record.key)
        with self._lock:
            endpoint = self._running.get(key)
            if endpoint is None or not endpoint.thread.is_alive():
                endpoint = self._start(key)
                self._running[key] = endpoint
            port = endpoint.port
        return f"{self._display_host()}:{port}"

    def stop(self, key: str) -> None:
        with self._lock:
            endpoint = self._running.pop(key, None)
        if endpoint is not None:
            self._stop(endpoint)

    def forget(self, key: str) -> None:
        """Stop the endpoint and release its port (the environment was deleted)."""
        self.stop(key)
        self._ports.forget(key)

    def shutdown(self) -> None:
        with self._lock:
            endpoints = list(self._running.values())
            self._running.clear()
        for endpoint in endpoints:
            endpoint.server.should_exit = True
        for endpoint in endpoints:
            endpoint.thread.join(timeout=10)

    # Internals -------------------------------------------------------------------------

    def _display_host(self) -> str:
        if self._config.public_host:
            return self._config.public_host
        host = self._config.host
        if host in ("0.0.0.0", "::", ""):  # noqa: S104 (comparing, not binding)
            return "127.0.0.1"
        return f"[{host}]" if ":" in host else host

    def _cert_hosts(self) -> tuple[str, ...]:
        extra = [h for h in (self._config.public_host, self._config.host) if h and h not in DEFAULT_HOSTS]
        return (*DEFAULT_HOSTS, *(h for h in extra if h not in ("0.0.0.0", "::")))  # noqa: S104

    def _start(self, key: str) -> _Endpoint:
        tls = self.tls_files()
        sock = self._ports.bind(key, self._config.host)
        port = int(sock.getsockname()[1])
        app = EnvironmentWebApp(key, self._deps)
        config = uvicorn.Config(
            app,
            log_level="warning",
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=5,
            ssl_certfile=str(tls.certfile) if tls else None,
            ssl_keyfile=str(tls.keyfile) if tls else None,
            server_header=False,
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name=f"web-endpoint-{key}", daemon=True
        )
        thread.start()
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                server.should_exit = True
                sock.close()
                raise RuntimeError(f"the web endpoint for {key} did not start on port {port}")
            time.sleep(0.01)
        log.info("web endpoint for %s on %s://%s:%d", key, self.scheme, self._display_host(), port)
        return _Endpoint(port=port, server=server, thread=thread, app=app)

    @staticmethod
    def _stop(endpoint: _Endpoint) -> None:
        endpoint.server.should_exit = True
        endpoint.thread.join(timeout=10)
