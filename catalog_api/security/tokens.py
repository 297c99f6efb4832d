"""JWT access and refresh tokens: one pinned algorithm; exp, iss, aud and type checked.

Every token has a ``jti`` so logout and refresh rotation can revoke it; the
revocation list lives in the database (``revoked_tokens``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

import jwt

from catalog_api.errors import UnauthorizedError

ALGORITHM = "HS256"
TokenType = Literal["access", "refresh"]


@dataclass(frozen=True)
class TokenClaims:
    """The claims Marquee reads back from a verified token."""

    account_id: str
    jti: str
    token_type: TokenType
    expires_at: datetime


@dataclass(frozen=True)
class TokenIssuer:
    """Signs and verifies tokens with the settings' secret, issuer and audience."""

    secret: str
    issuer: str
    audience: str
    access_ttl: timedelta = timedelta(minutes=15)
    refresh_ttl: timedelta = timedelta(days=14)

    def issue(self, account_id: str, token_type: TokenType, now: datetime | None = None) -> tuple[str, TokenClaims]:
        """A signed token of ``token_type`` for ``account_id`` and its claims."""
        now = now or datetime.now(UTC)
        ttl = self.access_ttl if token_type == "access" else self.refresh_ttl
        claims = TokenClaims(account_id, uuid.uuid4().hex, token_type, now + ttl)
        payload = {
            "sub": account_id,
            "jti": claims.jti,
            "typ": token_type,
            "iss": self.issuer,
            "aud": self.audience,
            "iat": int(now.timestamp()),
            "exp": int(claims.expires_at.timestamp()),
        }
        return jwt.encode(payload, self.secret, algorithm=ALGORITHM), claims

    def verify(self, token: str, expected_type: TokenType) -> TokenClaims:
        """Verify signature, algorithm, exp, iss, aud and type; raise ``UnauthorizedError`` otherwise."""
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
        )
