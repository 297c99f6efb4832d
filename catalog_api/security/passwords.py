"""Argon2 password hashing (pwdlib's recommended parameters)."""

from __future__ import annotations

from pwdlib import PasswordHash

_HASHER = PasswordHash.recommended()
# A hash to verify against when the e-mail is unknown, so that "no such user"
# takes as long as "wrong password" and cannot be told apart by timing.
_DUMMY_HASH = _HASHER.hash("not-a-real-password")


def hash_password(password: str) -> str:
    """Argon2id hash of ``password`` in PHC string format."""
    return _HASHER.hash(password)


def verify_password(password: str, password_hash: str | None) -> bool:
    """Whether ``password`` matches; takes the same time when there is no hash."""
    if password_hash is None:
        _HASHER.verify(password, _DUMMY_HASH)
        return False
    return _HASHER.verify(password, password_hash)
