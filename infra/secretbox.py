"""Secrets at rest: AES-256-GCM under a key derived (HKDF-SHA256) from CRM_SECRET_KEY.

The stored form is `v1.<base64url(nonce || ciphertext+tag)>`; the version prefix lets a later
scheme (key rotation of CRM_SECRET_KEY itself) sit beside this one. The row's name is bound as
associated data, so a ciphertext copied onto another row does not decrypt.
"""

from __future__ import annotations

import base64
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

MIN_KEY_CHARS = 32
_INFO = b"crm-sync target secrets v1"
_PREFIX = "v1."


class SecretKeyMissing(ValueError):
    """CRM_SECRET_KEY is unset, generated per process, or shorter than 32 characters."""


class SecretUnreadable(ValueError):
    """A stored secret does not decrypt with this key (another CRM_SECRET_KEY, or tampered)."""


class SecretBox:
    """Encrypts and decrypts target secrets; one per process, built from the settings' key."""

    __slots__ = ("_aead",)

    def __init__(self, master_key: str) -> None:
        if len(master_key) < MIN_KEY_CHARS:
            raise SecretKeyMissing(
                f"CRM_SECRET_KEY must hold at least {MIN_KEY_CHARS} characters to store secrets"
            )
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(
            master_key.encode()
        )
        self._aead = AESGCM(key)

    def __repr__(self) -> str:
        return "SecretBox(**********)"

    def seal(self, plaintext: str, context: str) -> str:
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), context.encode())
        return _PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode()

    def open(self, stored: str, context: str) -> str:
        if not stored.startswith(_PREFIX):
            raise SecretUnreadable("unknown secret format")
        try:
            raw = base64.urlsafe_b64decode(stored.removeprefix(_PREFIX))
            return self._aead.decrypt(raw[:12], raw[12:], context.encode()).decode()
        except (InvalidTag, ValueError) as exc:
            raise SecretUnreadable("a stored secret does not decrypt with CRM_SECRET_KEY") from exc
