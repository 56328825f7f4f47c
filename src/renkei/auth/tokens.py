"""Access tokens (JWT, HS256) and opaque refresh/session tokens. The only python-jose import."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from jose import JWTError, jwt

ALGORITHM = "HS256"
ALGORITHMS = [ALGORITHM]
ACCESS_TYPE = "access"


class InvalidToken(Exception):
    """The token is malformed, expired, of the wrong type, or not for us."""


@dataclass(frozen=True)
class AccessClaims:
    user_id: uuid.UUID
    session_id: uuid.UUID
    expires_at: int


def issue_access(
    key: bytes, *, user_id: uuid.UUID, session_id: uuid.UUID, issuer: str, audience: str,
    now: datetime, lifetime: timedelta,
) -> str:
    """Sign a short-lived access token bound to a sign-in session."""
    iat = int(now.timestamp())
    claims = {
        "iss": issuer,
        "aud": audience,
        "sub": str(user_id),
        "sid": str(session_id),
        "typ": ACCESS_TYPE,
        "iat": iat,
        "nbf": iat,
        "exp": iat + int(lifetime.total_seconds()),
        "jti": secrets.token_hex(8),
    }
    return jwt.encode(claims, key, algorithm=ALGORITHM, headers={"typ": "JWT"})


def decode_access(key: bytes, token: str, *, issuer: str, audience: str) -> AccessClaims:
    """Verify signature, algorithm, exp/iat/nbf, audience, issuer and token type."""
    if token.count(".") != 2:
        # Five segments would be a JWE; we never accept encrypted tokens.
        raise InvalidToken("malformed token")
    try:
        header = jwt.get_unverified_header(token)
        if header.get("alg") != ALGORITHM:
            raise InvalidToken("algorithm not allowed")
        claims = jwt.decode(
            token,
            key,
            algorithms=ALGORITHMS,
            audience=audience,
            issuer=issuer,
            options={"require_exp": True, "require_iat": True, "require_aud": True, "require_iss": True,
                     "require_sub": True, "leeway": 0},
        )
    except JWTError as exc:
        raise InvalidToken("invalid token") from exc
    if claims.get("typ") != ACCESS_TYPE:
        raise InvalidToken("wrong token type")
    try:
        return AccessClaims(uuid.UUID(claims["sub"]), uuid.UUID(claims["sid"]), int(claims["exp"]))
    except (KeyError, ValueError, TypeError) as exc:
        raise InvalidToken("malformed claims") from exc


def new_opaque() -> str:
    """256-bit random token for refresh tokens, cookie sessions and tickets."""
    return secrets.token_urlsafe(32)


def digest(token: str) -> str:
    """Tokens are stored only as SHA-256 digests: high-entropy, so no salt or slow hash is needed."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()
