"""People who work the review desk: their roles and passwords (argon2id hashes).

Passwords are hashed with argon2id (argon2-cffi, RFC 9106's low-memory parameters by
default); a stored hash made with older parameters is upgraded at the next good sign-in.
Checking a password for an unknown or disabled user still runs one hash, so the time a
sign-in takes does not say which usernames exist. Every change of a user is written to
the audit trail in the same transaction; passwords and hashes never reach the trail.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from fraudops.errors import InputError
from fraudops.review import _schema
from fraudops.review.audit import AuditAction, AuditEntry, insert_entry
from fraudops.review.database import ReviewDatabase
from fraudops.sql import as_utc, utc

_users = _schema.users
USERNAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._@-]{1,63}$")
MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 1024
"""Long enough for any passphrase; short enough that hashing it is no denial of service."""


class Role(StrEnum):
    """What a person may do; each role can do everything the one before it can."""

    ANALYST = "analyst"
    LEAD = "lead"
    ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class User:
    """A person who can sign in (never carries the password or its hash)."""

    username: str
    role: Role
    active: bool
    created_at: datetime
    created_by: str
    updated_at: datetime


def check_username(username: str) -> str:
    """``username`` if it is well formed (lowercase letters, digits, ``._@-``, 2-64 long)."""
    if not USERNAME_PATTERN.fullmatch(username):
        raise InputError(
            f"username {username!r} is not allowed: use 2-64 lowercase letters, digits"
            " or . _ @ - and start with a letter or digit"
        )
    return username


def check_password(password: str) -> str:
    """``password`` if its length is within bounds; says what is wrong if not."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InputError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InputError(f"a password may have at most {MAX_PASSWORD_LENGTH} characters")
    return password


class UserStore(Protocol):
    """Where users are kept; every change is audited with who made it."""

    def add(self, username: str, role: Role, password: str, *, by: str, now: datetime) -> User:
        """Create a user; InputError if the name is taken or the password too short."""
        ...

    def get(self, username: str) -> User | None:
        """The user, None if there is none."""
        ...

    def list(self) -> list[User]:
        """Every user, by username."""
        ...

    def set_role(self, username: str, role: Role, *, by: str, now: datetime) -> User:
        """Change a user's role."""
        ...

    def set_active(self, username: str, active: bool, *, by: str, now: datetime) -> User:
        """Enable or disable a user (a disabled user cannot sign in)."""
        ...

    def set_password(self, username: str, password: str, *, by: str, now: datetime) -> User:
        """Replace a user's password."""
        ...

    def verify(self, username: str, password: str, now: datetime) -> User | None:
        """The active user if the password is theirs; None otherwise (never says which)."""
        ...


class SqlUserStore:
    """Users in the review database (``review_users``)."""

    def __init__(self, database: ReviewDatabase, hasher: PasswordHasher | None = None) -> None:
        self._db = database
        self._hasher = hasher or PasswordHasher()
        # Checked against when the user is unknown, so that case costs one hash too.
        self._decoy = self._hasher.hash("decoy password, never anyone's")

    def add(self, username: str, role: Role, password: str, *, by: str, now: datetime) -> User:
        """Create a user; InputError if the name is taken or the password too short."""
        check_username(username)
        digest = self._hasher.hash(check_password(password))
        at = utc(now)
        with self._db.begin("add a user") as connection:
            if _read(connection, username) is not None:
                raise InputError(f"user {username!r} exists already")
            connection.execute(
                sa.insert(_users).values(
                    username=username,
                    role=Role(role).value,
                    password_hash=digest,
                    active=True,
                    created_at=at,
                    created_by=by,
                    updated_at=at,
                )
            )
            _audit(connection, by, at, username, "added", role=Role(role).value)
            return _required(connection, username)

    def get(self, username: str) -> User | None:
        """The user, None if there is none."""
        with self._db.begin("read a user") as connection:
            row = _read(connection, username)
        return None if row is None else _user(row)

    def list(self) -> list[User]:
        """Every user, by username."""
        with self._db.begin("list users") as connection:
            rows = connection.execute(sa.select(_users).order_by(_users.c.username)).mappings()
            return [_user(row) for row in rows]

    def set_role(self, username: str, role: Role, *, by: str, now: datetime) -> User:
        """Change a user's role."""
        return self._change(username, by, now, "role changed", role=Role(role).value)

    def set_active(self, username: str, active: bool, *, by: str, now: datetime) -> User:
        """Enable or disable a user (a disabled user cannot sign in)."""
        return self._change(username, by, now, "enabled" if active else "disabled", active=active)

    def set_password(self, username: str, password: str, *, by: str, now: datetime) -> User:
        """Replace a user's password."""
        digest = self._hasher.hash(check_password(password))
        return self._change(username, by, now, "password changed", password_hash=digest)

    def close(self) -> None:
        """Release the database connections."""
        self._db.close()

    def verify(self, username: str, password: str, now: datetime) -> User | None:
        """The active user if the password is theirs; None otherwise (never says which)."""
        with self._db.begin("read a user") as connection:
            row = _read(connection, username)
        digest = self._decoy if row is None else row["password_hash"]
        try:
            self._hasher.verify(digest, password[:MAX_PASSWORD_LENGTH])
        except (VerificationError, InvalidHashError):
            return None
        if row is None or not row["active"] or len(password) > MAX_PASSWORD_LENGTH:
            return None
        if self._hasher.check_needs_rehash(digest):
            with self._db.begin("upgrade a password hash") as connection:
                connection.execute(
                    sa.update(_users)
                    .where(_users.c.username == username)
                    .values(password_hash=self._hasher.hash(password))
                )
        return _user(row)

    def _change(self, username: str, by: str, now: datetime, change: str, **values: object) -> User:
        at = utc(now)
        with self._db.begin(f"change a user ({change})") as connection:
            updated = connection.execute(
                sa.update(_users)
                .where(_users.c.username == username)
                .values(updated_at=at, **values)
            )
            if updated.rowcount != 1:
                raise InputError(f"no user {username!r}")
            details = {k: v for k, v in values.items() if k != "password_hash"}
            _audit(connection, by, at, username, change, **details)
            return _required(connection, username)


def _audit(
    connection: sa.Connection, by: str, at: datetime, username: str, change: str, **details: object
) -> None:
    insert_entry(
        connection,
        AuditEntry(
            at=at,
            actor=by,
            action=AuditAction.USER_CHANGE,
            subject=username,
            reason=change,
            details={"change": change, **details},
        ),
    )


def _read(connection: sa.Connection, username: str) -> sa.RowMapping | None:
    query = sa.select(_users).where(_users.c.username == username)
    return connection.execute(query).mappings().first()


def _required(connection: sa.Connection, username: str) -> User:
    row = _read(connection, username)
    if row is None:
        raise InputError(f"no user {username!r}")
    return _user(row)


def _user(row: sa.RowMapping) -> User:
    return User(
        username=row["username"],
        role=Role(row["role"]),
        active=bool(row["active"]),
        created_at=as_utc(row["created_at"]),
        created_by=row["created_by"],
        updated_at=as_utc(row["updated_at"]),
    )
