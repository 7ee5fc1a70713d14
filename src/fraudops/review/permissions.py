"""Who may do what: the one permission table every route and API call checks.

Each role holds every permission of the role below it::

    analyst   work cases (queue, lock, verdicts, escalations)
    lead      + resolve escalated cases, read the audit trail, approve model promotion,
              roll a model back, change thresholds and rules
    admin     + manage users

Routes call :func:`authorise` (raises) or :func:`allowed` (to hide a button); nothing else
in the code decides permissions.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from fraudops.errors import AuthError, PermissionDeniedError
from fraudops.review.users import Role, User


class Permission(StrEnum):
    """Something a role may do."""

    WORK_CASES = "work_cases"
    RESOLVE_ESCALATIONS = "resolve_escalations"
    VIEW_AUDIT = "view_audit"
    APPROVE_PROMOTION = "approve_promotion"
    ROLLBACK_MODEL = "rollback_model"
    CHANGE_THRESHOLDS = "change_thresholds"
    CHANGE_RULES = "change_rules"
    MANAGE_USERS = "manage_users"


_ANALYST = frozenset({Permission.WORK_CASES})
_LEAD = _ANALYST | {
    Permission.RESOLVE_ESCALATIONS,
    Permission.VIEW_AUDIT,
    Permission.APPROVE_PROMOTION,
    Permission.ROLLBACK_MODEL,
    Permission.CHANGE_THRESHOLDS,
    Permission.CHANGE_RULES,
}
_ADMIN = _LEAD | {Permission.MANAGE_USERS}

PERMISSIONS: Mapping[Role, frozenset[Permission]] = {
    Role.ANALYST: _ANALYST,
    Role.LEAD: _LEAD,
    Role.ADMIN: _ADMIN,
}


def allowed(user: User, permission: Permission) -> bool:
    """Whether ``user`` may do ``permission`` now (a disabled user may do nothing)."""
    return user.active and permission in PERMISSIONS[user.role]


def authorise(user: User, permission: Permission) -> None:
    """Return if ``user`` may do ``permission``; raise AuthError (401) for a disabled
    account, PermissionDeniedError (403) naming the role and the action otherwise."""
    if not user.active:
        raise AuthError(f"account {user.username!r} is disabled")
    if permission not in PERMISSIONS[user.role]:
        raise PermissionDeniedError(
            f"{user.username!r} is {user.role.value}: {permission.value} is not allowed"
        )
