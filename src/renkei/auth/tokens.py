"""Access tokens (JWT, HS256) and opaque refresh/session tokens. The only python-jose import."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta

from jose import JWTError, jwt

ALGORITHM = "HS256"
ALGORITHMS = [ALGORITHM]
ACCESS_TYPE = "access"
# Verified access tokens, per process, for their remaining lifetime: a tablet sends the same token with
# every request for up to 15 minutes. Keyed by the token's digest; holds the claims, never the token.
VERIFIED_CACHE_SIZE = 10_000


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


class _VerifiedTokens:
    """Claims of tokens that passed `_verify`, until they expire.

    A hit needs the same key, issuer and audience as the verification it reuses, so a rotated token key or
    a changed configuration verifies afresh. Only the signature and claims checks are skipped: whether the
    sign-in session still exists and is not revoked is the caller's database check, on every request.
    """

    def __init__(self, size: int) -> None:
        self._size = size
        self._lock = threading.Lock()
        self._items: OrderedDict[bytes, tuple[bytes, str, str, AccessClaims]] = OrderedDict()

    def get(self, token_digest: bytes, key: bytes, issuer: str, audience: str) -> AccessClaims | None:
        with self._lock:
            hit = self._items.get(token_digest)
        if hit is None:
            return None
        hit_key, hit_issuer, hit_audience, claims = hit
        # Strictly before `exp`: a cached token never outlives what the decoder would accept.
        if (time.time() >= claims.expires_at or not hmac.compare_digest(hit_key, key)
                or hit_issuer != issuer or hit_audience != audience):
            return None
        return claims

    def put(self, token_digest: bytes, key: bytes, issuer: str, audience: str, claims: AccessClaims) -> None:
        with self._lock:
            self._items[token_digest] = (key, issuer, audience, claims)
            if len(self._items) > self._size:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


verified_tokens = _VerifiedTokens(VERIFIED_CACHE_SIZE)


def decode_access(key: bytes, token: str, *, issuer: str, audience: str) -> AccessClaims:
    """Verify signature, algorithm, exp/iat/nbf, audience, issuer and token type (cached per process)."""
    token_digest = hashlib.sha256(token.encode("utf-8")).digest()
    claims = verified_tokens.get(token_digest, key, issuer, audience)
    if claims is None:
        claims = _verify(key, token, issuer=issuer, audience=audience)
        verified_tokens.put(token_digest, key, issuer, audience, claims)
    return claims


def _verify(key: bytes, token: str, *, issuer: str, audience: str) -> AccessClaims:
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
