"""Secrets at rest (infra/secretbox.py) and the key `crm run` keeps in a local file."""

from __future__ import annotations

import stat

import pytest

from crm_cli import local_secret_key
from infra.secretbox import SecretBox, SecretKeyMissing, SecretUnreadable
from infra.settings import EPHEMERAL_SECRET_KEY, Settings

KEY = "x" * 32
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def test_a_sealed_secret_opens_with_the_same_key_and_row_only():
    sealed = SecretBox(KEY).seal(SECRET, "ERP")
    assert SECRET not in sealed and SECRET.removeprefix("whsec_") not in sealed
    assert SecretBox(KEY).open(sealed, "ERP") == SECRET
    assert SecretBox(KEY).seal(SECRET, "ERP") != sealed  # a fresh nonce each time
    with pytest.raises(SecretUnreadable):
        SecretBox("y" * 32).open(sealed, "ERP")
    with pytest.raises(SecretUnreadable):
        SecretBox(KEY).open(sealed, "CRM")  # copied onto another destination's row


def test_a_key_under_32_characters_is_refused():
    with pytest.raises(SecretKeyMissing):
        SecretBox("x" * 31)
    assert "x" * 31 not in repr(SecretBox(KEY)) and KEY not in repr(SecretBox(KEY))


def test_only_an_operator_set_key_encrypts_secrets():
    assert Settings.from_env({}).encryption_key is None
    assert Settings.from_env({"CRM_SECRET_KEY": KEY}).encryption_key.get() == KEY  # type: ignore[union-attr]
    generated = {"CRM_SECRET_KEY": KEY, EPHEMERAL_SECRET_KEY: "1"}  # `crm api --workers N`
    assert Settings.from_env(generated).encryption_key is None
    assert Settings.from_env({"CRM_SECRET_OVERLAP_HOURS": "0.5"}).secret_overlap.seconds == 1800


def test_crm_run_keeps_its_key_in_a_private_file_reused_next_time(tmp_path):
    path = tmp_path / "crm-secret.key"
    first = local_secret_key(str(path))
    assert len(first) >= 32 and local_secret_key(str(path)) == first
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
