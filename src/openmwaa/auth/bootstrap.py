"""The first administrator, and AWS client configuration files that point at this server.

``ensure_bootstrap_admin`` makes sure the identities file has a user ``admin`` allowed
everything and with an access key, then writes ``<data_dir>/credentials`` and
``<data_dir>/config`` in the AWS shared-file formats, so that::

    AWS_SHARED_CREDENTIALS_FILE=<data_dir>/credentials AWS_CONFIG_FILE=<data_dir>/config aws mwaa ...

works with no other setup. ``disable_host_prefix_injection`` and ``endpoint_url`` are config
variables botocore reads from the profile (see botocore's ``configprovider``).
"""

from __future__ import annotations

from typing import Any

from openmwaa.auth.credentials import SecretBox
from openmwaa.auth.files import write_private_file
from openmwaa.auth.iam_admin import IdentitiesEditor
from openmwaa.auth.identities_file import ACCESS_KEY_ID
from openmwaa.errors import ValidationError
from openmwaa.settings import Settings

ADMIN_USER = "admin"
ADMIN_POLICY_NAME = "AdministratorAccess"
ADMIN_POLICY: dict[str, Any] = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
}
PROFILES = ("default", "openmwaa")


def ensure_bootstrap_admin(settings: Settings) -> tuple[str, str]:
    """``(access_key_id, secret)`` of the admin user, creating user and key if absent.

    With ``settings.bootstrap_access_key_id``/``bootstrap_secret_access_key`` (CI), that key is
    the admin's; otherwise an existing admin key is kept, or an AWS-shaped one generated.
    """
    wanted_id, wanted_secret = settings.bootstrap_access_key_id, settings.bootstrap_secret_access_key
    if (wanted_id is None) != (wanted_secret is None):
        raise ValidationError(
            "set both OPENMWAA_BOOTSTRAP_ACCESS_KEY_ID and OPENMWAA_BOOTSTRAP_SECRET_ACCESS_KEY"
        )
    if wanted_id is not None and not ACCESS_KEY_ID.fullmatch(wanted_id):
        raise ValidationError("the bootstrap access key id must be 16 to 128 upper-case letters and digits")
    box = SecretBox.open(settings.data_dir)
    editor = IdentitiesEditor(settings.iam_path, account_id=settings.account_id, box=box)
    key_id, secret = _ensure_admin_key(editor, wanted_id, wanted_secret)
    write_client_files(settings, key_id, secret)
    return key_id, secret


def _ensure_admin_key(
    editor: IdentitiesEditor, wanted_id: str | None, wanted_secret: str | None
) -> tuple[str, str]:
    identities = editor.load()
    admin = identities.users.get(ADMIN_USER)
    if admin is None:
        editor.add_user(ADMIN_USER)
        editor.put_user_policy(ADMIN_USER, ADMIN_POLICY_NAME, ADMIN_POLICY)
    if wanted_id is not None and wanted_secret is not None:
        owner = identities.keys.get(wanted_id)
        if owner is not None:
            user, key = owner
            if user.name != ADMIN_USER:
                raise ValidationError(f"the bootstrap access key {wanted_id} belongs to user {user.name!r}")
            if key.secret_access_key != wanted_secret:
                _drop_key(editor, wanted_id)
                editor.create_access_key(ADMIN_USER, access_key_id=wanted_id, secret=wanted_secret)
            return wanted_id, wanted_secret
        created = editor.create_access_key(ADMIN_USER, access_key_id=wanted_id, secret=wanted_secret)
        return created.access_key_id, created.secret_access_key
    if admin is not None:
        for key in admin.access_keys:
            if key.active:
                return key.access_key_id, key.secret_access_key
    created = editor.create_access_key(ADMIN_USER)
    return created.access_key_id, created.secret_access_key


def _drop_key(editor: IdentitiesEditor, key_id: str) -> None:
    def change(raw: dict[str, Any]) -> None:
        for user in raw.get("users") or []:
            if isinstance(user, dict):
                user["access_keys"] = [k for k in user.get("access_keys") or [] if k.get("id") != key_id]

    editor.edit(change)


def write_client_files(settings: Settings, access_key_id: str, secret: str) -> None:
    """``<data_dir>/credentials`` and ``<data_dir>/config`` for the profiles ``default`` and ``openmwaa``."""
    credentials = "".join(
        f"[{profile}]\naws_access_key_id = {access_key_id}\naws_secret_access_key = {secret}\n\n"
        for profile in PROFILES
    )
    config = "".join(
        f"[{'default' if profile == 'default' else f'profile {profile}'}]\n"
        f"region = {settings.region}\n"
        f"endpoint_url = {settings.endpoint_url}\n"
        "disable_host_prefix_injection = true\n\n"
        for profile in PROFILES
    )
    write_private_file(settings.data_dir / "credentials", credentials.encode())
    write_private_file(settings.data_dir / "config", config.encode())
