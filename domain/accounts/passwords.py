"""Passwords: the policy a new one must meet, and argon2id hashing in its own threads.

Hashing has a pool of its own so that nothing else run in threads (a health probe waiting on a
dead broker, a file read) can queue in front of a sign-in, and a burst of sign-ins cannot starve
the rest of the process either.
"""

from __future__ import annotations

import asyncio
import gzip
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from domain.errors import DomainError

MIN_PASSWORD_LENGTH = 8
# The 10,000 most common passwords, in order, lowercased: the head of the list Django ships
# (django/contrib/auth/common-passwords.txt.gz, Royce Williams' list, BSD licence).
COMMON_PASSWORDS_FILE = Path(__file__).with_name("common-passwords.txt.gz")

_hasher = PasswordHasher()
# Two threads: each argon2id hash takes ~50 ms of one core and the machine has two.
_HASHING = ThreadPoolExecutor(max_workers=2, thread_name_prefix="argon2")


class WeakPassword(DomainError):
    field = "password"


@cache
def common_passwords() -> frozenset[str]:
    with gzip.open(COMMON_PASSWORDS_FILE, "rt", encoding="utf-8") as lines:
        return frozenset(line.strip() for line in lines if line.strip())


def check_new_password(password: str) -> None:
    """Refuse what a guesser tries first: blank, short, or on the common-password list."""
    if not password.strip():
        raise WeakPassword("password must not be blank")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise WeakPassword(f"password must hold at least {MIN_PASSWORD_LENGTH} characters")
    if password.strip().lower() in common_passwords():
        raise WeakPassword("password is too common: it is on a list of the most used passwords")


async def hash_password(password: str) -> str:
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_HASHING, _hasher.hash, password)


async def verify_password(password_hash: str, password: str) -> bool:
    loop = asyncio.get_running_loop()
    try:
        return await loop.run_in_executor(_HASHING, _hasher.verify, password_hash, password)
    except (VerificationError, InvalidHashError):
        return False
