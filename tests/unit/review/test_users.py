"""Users and roles: argon2 passwords, the permission table, and audited user changes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from argon2 import PasswordHasher

from fraudops.clock import ManualClock
from fraudops.errors import AuthError, InputError, PermissionDeniedError
from fraudops.review.audit import AuditAction, SqlAuditTrail
from fraudops.review.database import ReviewDatabase
from fraudops.review.permissions import PERMISSIONS, Permission, allowed, authorise
from fraudops.review.users import Role, SqlUserStore, User
from tests.unit.review.conftest import PASSWORD, T0


def test_a_user_signs_in_with_their_password_only(users: SqlUserStore, clock: ManualClock) -> None:
    """verify() gives the user for their password, None for a wrong one or an unknown name."""
    added = users.add("ann", Role.ANALYST, PASSWORD, by="ada", now=clock.now())
    assert added == users.verify("ann", PASSWORD, clock.now())
    assert users.verify("ann", PASSWORD + "!", clock.now()) is None
    assert users.verify("nobody", PASSWORD, clock.now()) is None


def test_the_password_is_stored_as_an_argon2id_hash(
    users: SqlUserStore, database: ReviewDatabase, clock: ManualClock
) -> None:
    """The stored value is an argon2id hash, not the password."""
    users.add("ann", Role.ANALYST, PASSWORD, by="ada", now=clock.now())
    with database.engine.connect() as connection:
        stored = connection.exec_driver_sql("SELECT password_hash FROM review_users").scalar_one()
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored


def test_a_disabled_user_cannot_sign_in(users: SqlUserStore, clock: ManualClock) -> None:
    """After set_active(False), the right password no longer signs in."""
    users.add("ann", Role.ANALYST, PASSWORD, by="ada", now=clock.now())
    users.set_active("ann", False, by="ada", now=clock.now())
    assert users.verify("ann", PASSWORD, clock.now()) is None


def test_bad_usernames_passwords_and_duplicates_are_refused(
    users: SqlUserStore, clock: ManualClock
) -> None:
    """A malformed name, a short password and a taken name each raise InputError saying so."""
    users.add("ann", Role.ANALYST, PASSWORD, by="ada", now=clock.now())
    for username, password, message in (
        ("Ann Smith", PASSWORD, "not allowed"),
        ("bob", "short", "at least 12"),
        ("ann", PASSWORD, "exists already"),
    ):
        with pytest.raises(InputError, match=message):
            users.add(username, Role.ANALYST, password, by="ada", now=clock.now())


def test_user_changes_are_audited_without_secrets(
    users: SqlUserStore, audit: SqlAuditTrail, clock: ManualClock
) -> None:
    """Adding, promoting and re-passwording a user leave entries; no password or hash."""
    users.add("ann", Role.ANALYST, PASSWORD, by="ada", now=clock.now())
    clock.advance(timedelta(minutes=1))
    users.set_role("ann", Role.LEAD, by="ada", now=clock.now())
    users.set_password("ann", PASSWORD + " 2", by="ann", now=clock.now())
    entries = audit.entries(action=AuditAction.USER_CHANGE, subject="ann")
    assert [
        ("ada", "added", {"change": "added", "role": "analyst"}),
        ("ada", "role changed", {"change": "role changed", "role": "lead"}),
        ("ann", "password changed", {"change": "password changed"}),
    ] == [(e.actor, e.reason, dict(e.details)) for e in entries]
    assert Role.LEAD == (users.get("ann") or pytest.fail("ann is gone")).role


def test_a_hash_with_weaker_parameters_is_upgraded_at_sign_in(
    database: ReviewDatabase, clock: ManualClock
) -> None:
    """A user hashed with older parameters signs in, and the stored hash is upgraded."""
    weak = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    SqlUserStore(database, weak).add("ann", Role.ANALYST, PASSWORD, by="ada", now=T0)
    stronger = PasswordHasher(time_cost=2, memory_cost=16, parallelism=1)
    assert SqlUserStore(database, stronger).verify("ann", PASSWORD, T0) is not None
    with database.engine.connect() as connection:
        stored = connection.exec_driver_sql("SELECT password_hash FROM review_users").scalar_one()
    assert not stronger.check_needs_rehash(stored)


def test_users_are_listed_by_name(users: SqlUserStore, clock: ManualClock) -> None:
    """list() gives every user in username order with their roles."""
    users.add("zoe", Role.ADMIN, PASSWORD, by="cli:root", now=clock.now())
    users.add("ann", Role.ANALYST, PASSWORD, by="zoe", now=clock.now())
    assert [("ann", Role.ANALYST), ("zoe", Role.ADMIN)] == [
        (user.username, user.role) for user in users.list()
    ]


def make_user(role: Role, *, active: bool = True) -> User:
    """A user of ``role`` that exists only in memory."""
    return User("someone", role, active, T0, "test", T0)


def test_the_permission_table_is_as_documented() -> None:
    """Analysts work cases; leads add escalations, audit, models, rules; admins add users."""
    lead_extra = {
        Permission.RESOLVE_ESCALATIONS,
        Permission.VIEW_AUDIT,
        Permission.APPROVE_PROMOTION,
        Permission.ROLLBACK_MODEL,
        Permission.CHANGE_THRESHOLDS,
        Permission.CHANGE_RULES,
    }
    assert {
        Role.ANALYST: {Permission.WORK_CASES},
        Role.LEAD: {Permission.WORK_CASES} | lead_extra,
        Role.ADMIN: set(Permission),
    } == {role: set(permissions) for role, permissions in PERMISSIONS.items()}


def test_authorise_names_the_role_and_the_refused_action() -> None:
    """An analyst asking to change thresholds gets a 403 naming both."""
    with pytest.raises(PermissionDeniedError, match="analyst: change_thresholds"):
        authorise(make_user(Role.ANALYST), Permission.CHANGE_THRESHOLDS)
    authorise(make_user(Role.LEAD), Permission.CHANGE_THRESHOLDS)


def test_a_disabled_account_may_do_nothing() -> None:
    """A disabled admin is allowed nothing, and authorise says 401, not 403."""
    admin = make_user(Role.ADMIN, active=False)
    assert not any(allowed(admin, permission) for permission in Permission)
    with pytest.raises(AuthError, match="disabled"):
        authorise(admin, Permission.WORK_CASES)
