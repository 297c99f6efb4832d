"""JWT access and refresh tokens: one pinned algorithm; exp, iss, aud and type checked.

Every token has a ``jti`` so logout and refresh rotation can revoke it; the
revocation list lives in the database (``revoked_tokens``). Every token also
names its *family* (``fam``): the login it descends from through refresh
rotations. Reusing a rotated refresh token (a sign that it was stolen) and
logging out revoke the whole family, so no refresh token of that login works
any more (``catalog_api.services.accounts.revoke_family``).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

import jwt

from catalog_api.errors import UnauthorizedError

ALGORITHM = "HS256"
#: Verified access tokens remembered per process (a client sends the same token for its whole life).
VERIFIED_CACHE_SIZE = 20_000
TokenType = Literal["access", "refresh"]


@dataclass(frozen=True)
class TokenClaims:
    """The claims Marquee reads back from a verified token."""

    account_id: str
    jti: str
    token_type: TokenType
    expires_at: datetime
    family: str = ""


@dataclass(frozen=True)
class TokenIssuer:
    """Signs and verifies tokens with the settings' secret, issuer and audience."""

    secret: str
    issuer: str
    audience: str
    access_ttl: timedelta = timedelta(minutes=15)
    refresh_ttl: timedelta = timedelta(days=14)
    _verified: OrderedDict[str, TokenClaims] = field(default_factory=OrderedDict, init=False, repr=False, compare=False)
    _verified_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False, compare=False)

    def issue(
        self, account_id: str, token_type: TokenType, now: datetime | None = None, family: str | None = None
    ) -> tuple[str, TokenClaims]:
        """A signed token of ``token_type`` for ``account_id`` and its claims; a new family unless given."""
        now = now or datetime.now(UTC)
        ttl = self.access_ttl if token_type == "access" else self.refresh_ttl
        jti = uuid.uuid4().hex
        claims = TokenClaims(account_id, jti, token_type, now + ttl, family or jti)
        payload = {
            "sub": account_id,
            "jti": claims.jti,
            "fam": claims.family,
            "typ": token_type,
            "iss": self.issuer,
            "aud": self.audience,
            "iat": int(now.timestamp()),
            "exp": int(claims.expires_at.timestamp()),
        }
        return jwt.encode(payload, self.secret, algorithm=ALGORITHM), claims

    def verify(self, token: str, expected_type: TokenType) -> TokenClaims:
        """Verify signature, algorithm, exp, iss, aud and type; raise ``UnauthorizedError`` otherwise.

        An access token that verified once is remembered (the same bytes verify the same way);
        only its expiry is checked again, so a cached token expires exactly when PyJWT would
        say so. Decoding cost a tenth of a home page's CPU, on every request of every client.
        Revocation is not cached: callers check it on every request.
        """
        remembered = self._verified.get(token) if expected_type == "access" else None
        if remembered is not None:
            if remembered.expires_at.timestamp() > time.time():
                return remembered
            with self._verified_lock:
                self._verified.pop(token, None)
        claims = self._decode(token, expected_type)
        if expected_type == "access":
            with self._verified_lock:
                self._verified[token] = claims
                while len(self._verified) > VERIFIED_CACHE_SIZE:
                    self._verified.popitem(last=False)
        return claims

    def remembered(self) -> int:
        """Verified access tokens remembered (at most ``VERIFIED_CACHE_SIZE``)."""
        return len(self._verified)

    def _decode(self, token: str, expected_type: TokenType) -> TokenClaims:
        try:
            payload = jwt.decode(
                token,
                self.secret,
                algorithms=[ALGORITHM],
                issuer=self.issuer,
                audience=self.audience,
                options={"require": ["exp", "iss", "aud", "sub", "jti", "typ"]},
            )
        except jwt.ExpiredSignatureError:
            raise UnauthorizedError("token expired; refresh it at /v1/auth/refresh or log in again") from None
        except jwt.InvalidTokenError as exc:
            raise UnauthorizedError(f"invalid token ({exc}); log in again at /v1/auth/token") from None
        if payload["typ"] != expected_type:
            raise UnauthorizedError(f"a {payload['typ']} token was sent where a {expected_type} token is needed")
        return TokenClaims(
            account_id=str(payload["sub"]),
            jti=str(payload["jti"]),
            token_type=expected_type,
            expires_at=datetime.fromtimestamp(int(payload["exp"]), UTC),
            family=str(payload.get("fam") or payload["jti"]),
        )
