"""Bearer tokens for the push gateway: compact HS256 JWTs signed with the settings' secret.

A token carries ``sub`` (who), ``role`` (one of ``Role``), ``scope`` (the
officer id for an officer, the case references for a citizen or case
officer), ``iat`` and ``exp``. Pure functions: the caller passes ``now``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass, field
from datetime import datetime

import orjson

from rtic.errors import AuthError
from rtic.schemas import Role

_HEADER = {"alg": "HS256", "typ": "JWT"}


def _b64e(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class Principal:
    """Who is on the other end of a socket, and what they may see."""

    sub: str
    role: Role
    cases: tuple[str, ...] = field(default_factory=tuple)
    expires_at: int = 0

    @property
    def officer_id(self) -> str | None:
        return self.sub if self.role in (Role.OFFICER, Role.SUPERVISOR) else None


def issue_token(
    secret: str,
    *,
    sub: str,
    role: Role | str,
    now: datetime,
    ttl_seconds: int,
    cases: tuple[str, ...] | list[str] = (),
) -> str:
    """A signed token for ``sub`` in ``role``."""
    role = Role(role)
    if not sub:
        raise AuthError("a token needs a subject")
    iat = int(now.timestamp())
    claims: dict[str, object] = {
        "sub": sub,
        "role": role.value,
        "iat": iat,
        "exp": iat + ttl_seconds,
    }
    if cases:
        claims["cases"] = list(cases)
    signing_input = f"{_b64e(orjson.dumps(_HEADER))}.{_b64e(orjson.dumps(claims))}"
    sig = hmac.new(secret.encode(), signing_input.encode("ascii"), hashlib.sha256).digest()
    return f"{signing_input}.{_b64e(sig)}"


def verify_token(secret: str, token: str, *, now: datetime) -> Principal:
    """The principal of a valid token, or ``AuthError`` saying why not."""
    if not token.isascii():  # a JWT is ASCII; anything else must be a 401, not a crash
        raise AuthError("malformed token")
    try:
        head, body, sig = token.strip().split(".")
    except ValueError as exc:
        raise AuthError("malformed token") from exc
    expected = hmac.new(secret.encode(), f"{head}.{body}".encode("ascii"), hashlib.sha256).digest()
    try:
        given = _b64d(sig)
    except ValueError as exc:
        raise AuthError("malformed token signature") from exc
    if not hmac.compare_digest(expected, given):
        raise AuthError("bad token signature")
    try:
        header = orjson.loads(_b64d(head))
        claims = orjson.loads(_b64d(body))
        if header.get("alg") != "HS256":
            raise AuthError("unsupported token algorithm")
        role = Role(claims["role"])
        sub = str(claims["sub"])
        exp = int(claims["exp"])
        cases = tuple(str(c) for c in claims.get("cases", ()))
    except (ValueError, KeyError, TypeError, orjson.JSONDecodeError) as exc:
        raise AuthError("malformed token claims") from exc
    if exp <= now.timestamp():
        raise AuthError("token expired")
    return Principal(sub=sub, role=role, cases=cases, expires_at=exp)
