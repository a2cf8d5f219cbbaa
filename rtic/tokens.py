"""Bearer tokens for the push gateway: HS256 JWTs made and checked with PyJWT.

A token carries the registered claims ``iss`` (who issued it), ``aud`` (who
may accept it), ``sub`` (who), ``jti`` (the token's own id, so one token can
be revoked), ``iat``, ``nbf`` and ``exp``, and the engine's own ``role`` (one
of ``Role``), ``cases`` (the case references a citizen or case officer may
see) and ``areas`` (the area codes a supervisor or officer looks after; a
supervisor without areas sees the whole force's cases). A token without
``jti`` (issued before tokens carried one) still verifies; it can be revoked
with every other token of its subject. Its header names the signing key
(``kid``), so a secret can be rotated without logging everyone out: new
tokens are signed with the current key while tokens signed with a previous
key, still listed in ``TokenKeys.secrets``, verify until they expire.

Outside development (``Settings.environment``) a key ring is only built from
secrets that are not the published development secret and are at least 32
bytes: ``check_secrets`` says why not, and ``TokenKeys.from_settings`` refuses.

A login ticket (``login_ticket``) is what a printed link carries instead of a
token: an opaque random string, good once and for minutes. What it stands for
(a grant: a JWT for the ticket audience ``<aud>:login-ticket``, never a bearer
token) is kept under the SHA-256 of the ticket (``login_ticket_key``); the
gateway takes it out once and issues the bearer token (``push/tickets.py``).

Pure functions: the caller passes ``now``. PyJWT checks the signature, the
algorithm, ``iss`` and ``aud``; the times are checked here against ``now``
(PyJWT would read the wall clock). Every refusal is an ``AuthError``.
"""

from __future__ import annotations

import hashlib
import logging
import secrets as random_secrets
import uuid
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

import jwt

from rtic.errors import AuthError, ConfigError
from rtic.schemas import Role
from rtic.settings import DEV_TOKEN_SECRET, Settings

log = logging.getLogger(__name__)

ALGORITHM = "HS256"
DEFAULT_KEY_ID = "k1"
ISSUER = "rtic-engine"
AUDIENCE = "rtic"
MIN_SECRET_BYTES = 32  # RFC 7518 section 3.2: an HS256 key at least as long as the hash
_REQUIRED = ("sub", "role", "iss", "aud", "iat", "nbf", "exp")
_short_keys_reported: set[str] = set()
EPOCH = datetime.fromtimestamp(0, UTC)
TICKET_AUDIENCE_SUFFIX = ":login-ticket"


def check_secrets(settings: Settings) -> list[str]:
    """What is wrong with the token secrets for the settings' environment (empty: nothing).

    Outside development: the development secret (published in this source) or a
    secret under ``MIN_SECRET_BYTES``, current or previous. In development nothing
    is refused (``rtic up`` says loudly that the development secret signs)."""
    if settings.environment == "development":
        return []
    named = {f"RTIC_TOKEN_SECRET (key {settings.token_key_id})": settings.token_secret}
    named.update(
        {
            f"RTIC_TOKEN_PREVIOUS_SECRETS[{kid}]": v
            for kid, v in settings.token_previous_secrets.items()
        }
    )
    problems = []
    for name, value in named.items():
        secret = value.get_secret_value()
        if secret == DEV_TOKEN_SECRET:
            problems.append(f"{name} is the development secret, published in the source")
        elif len(secret.encode()) < MIN_SECRET_BYTES:
            problems.append(f"{name} is shorter than {MIN_SECRET_BYTES} bytes")
    return problems


def require_usable_secrets(settings: Settings) -> None:
    """``ConfigError`` naming every problem of ``check_secrets`` (the secrets never shown)."""
    problems = check_secrets(settings)
    if problems:
        raise ConfigError(
            f"RTIC_ENVIRONMENT={settings.environment}: refusing to sign or check tokens: "
            + "; ".join(problems)
            + ". Set RTIC_TOKEN_SECRET to a random value of at least 32 bytes "
            "(e.g. python -c 'import secrets; print(secrets.token_urlsafe(48))')."
        )


def uses_development_secret(settings: Settings) -> bool:
    """Whether new tokens are signed with the published development secret."""
    return settings.token_secret.get_secret_value() == DEV_TOKEN_SECRET


@dataclass(frozen=True)
class TokenKeys:
    """The signing key by id, the keys still accepted, and who issues tokens for whom."""

    current_kid: str
    secrets: Mapping[str, str] = field(repr=False)  # never in a log line or traceback
    issuer: str = ISSUER
    audience: str = AUDIENCE

    def __post_init__(self) -> None:
        if self.current_kid not in self.secrets:
            raise AuthError(f"no secret for the current key id {self.current_kid!r}")
        object.__setattr__(self, "secrets", MappingProxyType(dict(self.secrets)))

    @classmethod
    def single(cls, secret: str, kid: str = DEFAULT_KEY_ID) -> TokenKeys:
        """One key, nothing to rotate (the form a bare secret string stands for)."""
        return cls(current_kid=kid, secrets={kid: secret})

    @classmethod
    def from_settings(cls, settings: Settings) -> TokenKeys:
        """The current key, the previous keys still accepted, issuer and audience.

        Raises:
            ConfigError: outside development, a development or short secret.
        """
        require_usable_secrets(settings)
        secrets = {
            kid: value.get_secret_value() for kid, value in settings.token_previous_secrets.items()
        }
        secrets[settings.token_key_id] = settings.token_secret.get_secret_value()
        return cls(
            current_kid=settings.token_key_id,
            secrets=secrets,
            issuer=settings.token_issuer,
            audience=settings.token_audience,
        )


@dataclass(frozen=True)
class Principal:
    """Who is on the other end of a socket, and what they may see."""

    sub: str
    role: Role
    cases: tuple[str, ...] = field(default_factory=tuple)
    expires_at: int = 0
    areas: tuple[str, ...] = field(default_factory=tuple)
    jti: str | None = None  # None: a token issued before tokens carried an id
    issued_at: datetime = EPOCH

    @property
    def officer_id(self) -> str | None:
        return self.sub if self.role in (Role.OFFICER, Role.SUPERVISOR) else None


def _keys(keys: TokenKeys | str) -> TokenKeys:
    return TokenKeys.single(keys) if isinstance(keys, str) else keys


def _quietly(call: Any, kid: str, secret: str) -> Any:
    """Run a PyJWT call, reporting a short secret once in the log instead of as a
    ``warnings`` warning on every token (which pytest turns into errors)."""
    if len(secret.encode()) < MIN_SECRET_BYTES and kid not in _short_keys_reported:
        _short_keys_reported.add(kid)
        log.warning(
            "token key %r is shorter than %d bytes: set a longer RTIC_TOKEN_SECRET",
            kid,
            MIN_SECRET_BYTES,
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", jwt.InsecureKeyLengthWarning)
        return call()


def issue_token(
    keys: TokenKeys | str,
    *,
    sub: str,
    role: Role | str,
    now: datetime,
    ttl_seconds: int,
    cases: tuple[str, ...] | list[str] = (),
    areas: tuple[str, ...] | list[str] = (),
    jti: str | None = None,
) -> str:
    """A token for ``sub`` in ``role``, signed with the current key.

    Args:
        keys: the key ring (``TokenKeys.from_settings``), or a bare secret (key id ``k1``).
        sub: the subject: a user or officer id.
        role: one of ``Role`` (a ``ValueError`` otherwise).
        now: the issue time; the token is valid from it for ``ttl_seconds``.
        ttl_seconds: lifetime.
        cases: case references the holder may see.
        areas: area codes the holder looks after (supervisors, officers).
        jti: the token's id (default: a new random one), what ``rtic token revoke
            --jti`` names.

    Raises:
        AuthError: no subject.
    """
    role = Role(role)
    if not sub:
        raise AuthError("a token needs a subject")
    ring = _keys(keys)
    iat = int(now.timestamp())
    claims: dict[str, object] = {
        "iss": ring.issuer,
        "aud": ring.audience,
        "sub": sub,
        "role": role.value,
        "jti": jti or uuid.uuid4().hex,
        "iat": iat,
        "nbf": iat,
        "exp": iat + ttl_seconds,
    }
    if cases:
        claims["cases"] = list(cases)
    if areas:
        claims["areas"] = list(areas)
    secret = ring.secrets[ring.current_kid]
    return str(
        _quietly(
            lambda: jwt.encode(
                claims, secret, algorithm=ALGORITHM, headers={"kid": ring.current_kid}
            ),
            ring.current_kid,
            secret,
        )
    )


def _decode(ring: TokenKeys, token: str) -> dict[str, Any]:
    """The claims of a token signed by a known key for this issuer and audience."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise AuthError("malformed token") from exc
    if header.get("alg") != ALGORITHM:
        raise AuthError("unsupported token algorithm")
    kid = header.get("kid")
    if not isinstance(kid, str) or kid not in ring.secrets:
        raise AuthError(f"unknown token key id {kid!r}")
    secret = ring.secrets[kid]
    try:
        claims: dict[str, Any] = _quietly(
            lambda: jwt.decode(
                token,
                secret,
                algorithms=[ALGORITHM],
                audience=ring.audience,
                issuer=ring.issuer,
                # Times are checked against the caller's ``now`` below, not the wall clock.
                options={
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                    "require": list(_REQUIRED),
                },
            ),
            kid,
            secret,
        )
    except jwt.InvalidSignatureError as exc:
        raise AuthError("bad token signature") from exc
    except jwt.InvalidAudienceError as exc:
        raise AuthError("token is for another audience") from exc
    except jwt.InvalidIssuerError as exc:
        raise AuthError("token from another issuer") from exc
    except jwt.DecodeError as exc:
        raise AuthError("malformed token") from exc
    except jwt.PyJWTError as exc:
        raise AuthError(f"malformed token claims: {exc}") from exc
    return claims


def verify_token(keys: TokenKeys | str, token: str, *, now: datetime) -> Principal:
    """The principal of a valid token, or ``AuthError`` saying why not.

    Refused: malformed, another algorithm, an unknown key id, a bad signature,
    another issuer or audience, missing or ill-typed claims, not yet valid
    (``nbf`` after ``now``) and expired (``exp`` at or before ``now``).
    """
    if not token.isascii():  # a JWT is ASCII; anything else must be a 401, not a crash
        raise AuthError("malformed token")
    claims = _decode(_keys(keys), token.strip())
    try:
        role = Role(claims["role"])
        sub = claims["sub"]
        times = {name: claims[name] for name in ("iat", "nbf", "exp")}
        raw_cases = claims.get("cases", [])
        raw_areas = claims.get("areas", [])
        jti = claims.get("jti")
        if (
            not isinstance(sub, str)
            or not isinstance(raw_cases, list)
            or not isinstance(raw_areas, list)
            or not (jti is None or (isinstance(jti, str) and jti))
            or not all(isinstance(t, int) and not isinstance(t, bool) for t in times.values())
        ):
            raise TypeError("ill-typed claims")
        cases = tuple(str(c) for c in raw_cases)
        areas = tuple(str(a) for a in raw_areas)
    except (ValueError, KeyError, TypeError) as exc:
        raise AuthError("malformed token claims") from exc
    at = now.timestamp()
    if times["nbf"] > at:
        raise AuthError("token not valid yet")
    if times["exp"] <= at:
        raise AuthError("token expired")
    return Principal(
        sub=sub,
        role=role,
        cases=cases,
        expires_at=times["exp"],
        areas=areas,
        jti=jti,
        issued_at=datetime.fromtimestamp(times["iat"], UTC),
    )


# ---- login tickets ------------------------------------------------------------------------


def _ticket_ring(ring: TokenKeys) -> TokenKeys:
    """The same keys for another audience: a grant is never accepted as a bearer token."""
    return TokenKeys(
        current_kid=ring.current_kid,
        secrets=ring.secrets,
        issuer=ring.issuer,
        audience=ring.audience + TICKET_AUDIENCE_SUFFIX,
    )


def login_ticket_key(prefix: str, ticket: str) -> str:
    """Where a ticket's grant is kept in Redis: under its SHA-256, never the ticket itself."""
    digest = hashlib.sha256(ticket.encode()).hexdigest()
    return f"{prefix}rtic:login-ticket:{digest}"


@dataclass(frozen=True)
class LoginTicket:
    """A new ticket (what the link carries) and its grant (what Redis keeps)."""

    ticket: str = field(repr=False)
    grant: str = field(repr=False)
    jti: str  # the id the bearer token will carry (``rtic token revoke --jti``)
    ttl_seconds: int


def login_ticket(
    keys: TokenKeys | str,
    *,
    sub: str,
    role: Role | str,
    now: datetime,
    ttl_seconds: int,
    cases: tuple[str, ...] | list[str] = (),
    areas: tuple[str, ...] | list[str] = (),
) -> LoginTicket:
    """A one-use login ticket for ``sub`` in ``role``, good for ``ttl_seconds``.

    The ticket is 256 random bits (URL-safe); the grant is signed with the current
    key for the ticket audience and names the jti of the bearer token it becomes."""
    jti = uuid.uuid4().hex
    grant = issue_token(
        _ticket_ring(_keys(keys)),
        sub=sub,
        role=role,
        now=now,
        ttl_seconds=ttl_seconds,
        cases=cases,
        areas=areas,
        jti=jti,
    )
    return LoginTicket(random_secrets.token_urlsafe(32), grant, jti, ttl_seconds)


def redeem_grant(
    keys: TokenKeys | str, grant: str, *, now: datetime, token_ttl_seconds: int
) -> str:
    """The bearer token a ticket's grant stands for (same subject, role, scope and jti),
    for ``token_ttl_seconds`` from ``now``; ``AuthError`` if the grant is not valid."""
    ring = _keys(keys)
    who = verify_token(_ticket_ring(ring), grant, now=now)
    return issue_token(
        ring,
        sub=who.sub,
        role=who.role,
        now=now,
        ttl_seconds=token_ttl_seconds,
        cases=who.cases,
        areas=who.areas,
        jti=who.jti,
    )
