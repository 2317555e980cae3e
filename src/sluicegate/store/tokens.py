"""API tokens: the plaintext is shown once at creation; only its SHA-256 is stored.

A token reads ``sgt_<id>_<secret>``: the id (12 hex digits) finds the row, the 256-bit random
secret makes it unguessable, and the stored hash is compared in constant time
(:func:`hmac.compare_digest`). An unsalted SHA-256 is enough for a random 256-bit secret;
a slow password hash would only slow down every API call.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from typing import cast

import sqlalchemy as sa

from sluicegate.errors import ConflictError, NotFoundError, Problem, SpecError

from ._base import Repository
from ._records import Role, Token
from ._schema import ROLES, tokens

__all__ = ["TOKEN_PREFIX", "TokenRepository", "hash_token"]

TOKEN_PREFIX = "sgt_"
_SHAPE = re.compile(r"sgt_([0-9a-f]{12})_[A-Za-z0-9_-]{20,}")
_NAME = re.compile(r"[^\s\x00-\x1f\x7f]([^\x00-\x1f\x7f]{0,98}[^\s\x00-\x1f\x7f])?")
#: Compared against when the token names no stored id, so a miss costs what a hit costs.
_DUMMY_HASH = "0" * 64


def hash_token(token: str) -> str:
    """Hex SHA-256 of the whole token string: what the ``tokens.hash`` column holds."""
    return hashlib.sha256(token.encode()).hexdigest()


class TokenRepository(Repository):
    def create(
        self,
        role: str,
        name: str,
        env: str | None = None,
        *,
        service: str | None = None,
        ttl: float | None = None,
    ) -> str:
        """Store a new token for ``role`` and return its plaintext (kept nowhere: show it to
        the user now). ``name`` says what it is for and is unique among valid tokens (events
        name the caller by it). An ``agent`` token needs ``env``; a ``metrics`` token may be
        limited to one ``service``; ``ttl`` seconds make it expire.
        """
        problems = []
        if role not in ROLES:
            problems.append(Problem("role", f"must be one of {', '.join(ROLES)}, not {role!r}"))
        if not name or not _NAME.fullmatch(name):
            problems.append(
                Problem(
                    "name",
                    f"{name!r} must be 1-100 printable characters, "
                    "not starting or ending with a space",
                )
            )
        if role == "agent" and not env:
            problems.append(Problem("env", "an agent token is scoped to one environment"))
        if role != "agent" and env is not None:
            problems.append(Problem("env", f"only agent tokens have an environment, not {role}"))
        if role != "metrics" and service is not None:
            problems.append(Problem("service", f"only metrics tokens have a service, not {role}"))
        if ttl is not None and ttl <= 0:
            problems.append(Problem("ttl", "must be more than 0 seconds"))
        if problems:
            raise SpecError(problems)
        token_id = secrets.token_hex(6)
        token = f"{TOKEN_PREFIX}{token_id}_{secrets.token_urlsafe(32)}"
        now = self._clock.now()
        row = {
            "id": token_id,
            "role": role,
            "name": name,
            "hash": hash_token(token),
            "created_at": now,
            "revoked_at": None,
            "env": env,
            "service": service,
            "expires_at": None if ttl is None else now + ttl,
        }
        with self._db.write() as conn:
            for other in conn.execute(sa.select(tokens).where(tokens.c.name == name)).mappings():
                if _token(other).valid_at(now):
                    raise ConflictError(
                        f"a valid token named {name!r} exists; revoke it or choose another name"
                    )
            conn.execute(sa.insert(tokens).values(row))
        return token

    def authenticate(self, token: str) -> Token | None:
        """The record of a valid token (not revoked, not expired); None for anything else.
        Read from the database on every call, so a revocation holds at once everywhere."""
        match = _SHAPE.fullmatch(token)
        row = None
        if match:
            with self._db.read() as conn:
                query = sa.select(tokens).where(tokens.c.id == match.group(1))
                row = conn.execute(query).mappings().first()
        stored = row["hash"] if row is not None else _DUMMY_HASH
        equal = hmac.compare_digest(hash_token(token).encode(), str(stored).encode())
        if row is None or not equal:
            return None
        found = _token(row)
        return found if found.valid_at(self._clock.now()) else None

    def verify(self, token: str) -> Role | None:
        """The role of a valid, unrevoked token; None for anything else."""
        found = self.verify_scoped(token)
        return None if found is None else found[0]

    def verify_scoped(self, token: str) -> tuple[Role, str | None] | None:
        """The role and environment scope (agent tokens) of a valid token."""
        found = self.authenticate(token)
        return None if found is None else (found.role, found.env)

    def list(self) -> list[Token]:
        """Every token's metadata (revoked ones too), oldest first."""
        query = sa.select(tokens).order_by(tokens.c.created_at, tokens.c.id)
        with self._db.read() as conn:
            return [_token(r) for r in conn.execute(query).mappings()]

    def revoke(self, token_id: str) -> Token:
        """Revoke a token by id (idempotent: the first revocation time is kept)."""
        with self._db.write() as conn:
            conn.execute(
                sa.update(tokens)
                .where(tokens.c.id == token_id, tokens.c.revoked_at.is_(None))
                .values(revoked_at=self._clock.now())
            )
            row = conn.execute(sa.select(tokens).where(tokens.c.id == token_id)).mappings().first()
        if row is None:
            raise NotFoundError(f"token {token_id!r} not found")
        return _token(row)

    def revoke_named(self, name_or_id: str) -> Token:
        """Revoke the valid token with this name (or id); NotFoundError when there is none."""
        now = self._clock.now()
        for token in reversed(self.list()):
            if name_or_id in (token.name, token.id) and token.valid_at(now):
                return self.revoke(token.id)
        raise NotFoundError(f"no valid token named {name_or_id!r} (sluice token list)")


def _token(row: sa.RowMapping) -> Token:
    return Token(
        id=row["id"],
        role=cast(Role, row["role"]),
        name=row["name"],
        created_at=row["created_at"],
        revoked_at=row["revoked_at"],
        env=row["env"],
        service=row["service"],
        expires_at=row["expires_at"],
    )
