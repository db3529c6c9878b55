"""Console sign-in in a real browser: headless Chromium opens MWAA's SSO link and lands in Airflow's UI.

``https://{WebServerHostname}/aws_mwaa/aws-console-sso?login=true#{WebToken}`` (Airflow 3:
``/pluginsv2/aws_mwaa/aws-console-sso``) is what the AWS console opens. The page's script reads the
token from the fragment, signs in, and opens the Airflow UI as the IAM-mapped user; on Airflow 2
``openmwaa_airflow.web_login`` turns the proxied session into a Flask/FAB login.

Chromium is driven from its command line only (``--dump-dom`` and ``--screenshot`` of the page after
its scripts ran); the test installs nothing and is skipped when ``chromium`` is not on PATH (Debian:
``apt-get install chromium``). Chromium trusts exactly the endpoint's certificate key
(``--ignore-certificate-errors-spki-list``), not any certificate. Screenshots are left in the test's
temporary directory (the path is printed).
"""

from __future__ import annotations

import base64
import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tests.e2e.conftest import OpenMwaaServer

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        shutil.which("chromium") is None,
        reason="chromium is not installed (Debian/Ubuntu: apt-get install -y chromium)",
    ),
]

#: Virtual time the page gets to run its scripts, load the UI and call Airflow's API (ms).
PAGE_BUDGET_MS = 8000


def spki_pin(cert_file: Path) -> str:
    """Base64 SHA-256 of the certificate's public key, as Chromium's pin list wants it."""
    cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    der = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


def chromium(
    server: OpenMwaaServer, profile: Path, url: str, *, screenshot: Path | None = None, budget_ms: int
) -> str:
    """Load ``url`` headless with ``profile`` (cookies persist between calls); the DOM afterwards."""
    args = [
        "chromium",
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        f"--ignore-certificate-errors-spki-list={spki_pin(server.data_dir / 'tls' / 'server.pem')}",
        "--window-size=1280,800",
        f"--virtual-time-budget={budget_ms}",
        # A hard stop in real time, should a request never finish (virtual time waits for it).
        "--timeout=60000",
        "--dump-dom",
    ]
    if screenshot is not None:
        args.append(f"--screenshot={screenshot}")
    done = subprocess.run([*args, url], capture_output=True, text=True, timeout=150, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_console_sso_link_opens_the_airflow_ui_signed_in(
    server: OpenMwaaServer, shared_env: tuple[str, int], tmp_path: Path
) -> None:
    name, major = shared_env
    created = server.client().create_web_login_token(Name=name)
    host, token, user = created["WebServerHostname"], created["WebToken"], created["AirflowIdentity"]
    prefix = "/aws_mwaa" if major == 2 else "/pluginsv2/aws_mwaa"
    shot = tmp_path / f"airflow{major}-ui.png"
    profile = tmp_path / "chromium-profile"

    dom = chromium(
        server,
        profile,
        f"https://{host}{prefix}/aws-console-sso?login=true#{token}",
        screenshot=shot,
        budget_ms=PAGE_BUDGET_MS,
    )
    print(f"screenshot of the Airflow {major} UI: {shot}")
    assert shot.stat().st_size > 10_000
    # Neither openmwaa's sign-in pages nor Airflow's own login form: the UI itself.
    assert "Sign-in failed" not in dom and "Sign in to Apache Airflow" not in dom
    assert "Sign In - Airflow" not in dom
    if major == 2:
        assert "DAGs - Airflow" in " ".join(dom.split())
        assert "hello_openmwaa" in dom  # the DAG list, rendered for a signed-in user
        assert user in dom  # FAB's user menu names the IAM-mapped user
    else:
        assert "Home - Airflow" in dom
        # The browser's session is the IAM-mapped user's, as Airflow 3's UI API sees it.
        me = chromium(server, profile, f"https://{host}/ui/auth/me", budget_ms=1000)
        assert f'"username":"{user}"' in me

    # The page used the token from the fragment: it cannot sign anyone in a second time.
    again = requests.post(
        f"https://{host}{prefix}/login",
        data={"token": token},
        verify=str(server.data_dir / "tls" / "ca.pem"),
        timeout=30,
    )
    assert again.status_code == 403
    assert "already been used" in again.json()["detail"]
