"""Moving the champion by a person's decision: promotion and rollback, each audited.

Shared by ``fraudops models promote · rollback`` and the review UI's models page: the
registry's alias moves (kept in its alias history with the actor), then the audit trail
records it; if the trail cannot, the move is undone, so no champion move stands
unaudited. Who may pull these levers is the permission table's answer
(:func:`approver`); the registry is only touched after that check.

A move is made on what the person saw: the version they chose to move the champion to, and
where the aliases pointed then. If the registry holds something else by the time it is
made (another lead moved first, a stale tab, a double click, a new challenger), the
registry refuses it with AliasMovedError (409): nothing moves and nothing is audited.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from fraudops.errors import AuthError, FraudopsError, InputError, PermissionDeniedError, StoreError
from fraudops.review.audit import AuditAction
from fraudops.review.permissions import Permission, allowed
from fraudops.review.users import User, UserStore

if TYPE_CHECKING:
    from fraudops.learn.registry import AliasChange, MlflowRegistry

__all__ = ["PERMISSION_OF", "approver", "move_champion"]

PERMISSION_OF: dict[AuditAction, Permission] = {
    AuditAction.PROMOTION: Permission.APPROVE_PROMOTION,
    AuditAction.ROLLBACK: Permission.ROLLBACK_MODEL,
}
"""The permission each champion move needs."""

_VERB_OF: dict[AuditAction, str] = {
    AuditAction.PROMOTION: "promote",
    AuditAction.ROLLBACK: "roll back",
}
"""What a person does in each champion move, for messages (``may roll back a model``)."""

Recorder = Callable[["AliasChange"], object]
"""Writes one champion move to the audit trail (raises a FraudopsError if it cannot)."""


def approver(users: UserStore, username: str, action: AuditAction) -> User:
    """The active user ``username`` if their role may do ``action``; else an error naming why.

    AuthError when there is no such active user, PermissionDeniedError when their role
    may not (an analyst).
    """
    permission = _permission(action)
    user = users.get(username)
    if user is None:
        raise AuthError(f"{username!r} is not a user of the review desk: a lead must approve")
    if not user.active:
        raise AuthError(f"{username!r} is disabled in the review desk: a lead must approve")
    if not allowed(user, permission):
        raise PermissionDeniedError(
            f"{username!r} is {user.role.value}: only a lead or admin may {_VERB_OF[action]}"
            " a model"
        )
    return user


def move_champion(
    registry: MlflowRegistry,
    action: AuditAction,
    *,
    actor: str,
    reason: str,
    record: Recorder,
    to: int | None = None,
    expect: Mapping[str, int | None] | None = None,
) -> AliasChange:
    """Promote the challenger to champion, or roll the champion back one step, as ``actor``.

    ``to`` is the version the person chose to move the champion to (the challenger, or
    the version a rollback restores; None: whichever it is now), and ``expect`` where the
    aliases pointed when they chose (``{"champion": 2}``): if the registry says otherwise
    now, AliasMovedError (409) and nothing moves. ``record`` writes the move to the audit
    trail; if it raises, the champion is moved back (that move is in the alias history
    too) and a StoreError says so.
    """
    _permission(action)
    if not actor.strip() or not reason.strip():
        raise InputError(f"a {action.value} needs an actor and a reason")
    seen = dict(expect or {})
    if action is AuditAction.PROMOTION:
        target = registry.get("challenger").version if to is None else to
        seen["challenger"] = target
        change = registry.set_alias("champion", target, actor=actor, reason=reason, expect=seen)
    else:
        change = registry.rollback("champion", actor=actor, reason=reason, to=to, expect=seen)
    try:
        record(change)
    except FraudopsError as exc:
        if change.previous_version is None:
            raise StoreError(
                f"the {action.value} to version {change.version} was made but not recorded"
                f" in the audit trail, and there is no earlier champion to undo it to: {exc}"
            ) from exc
        try:
            registry.set_alias(
                "champion",
                change.previous_version,
                actor=actor,
                reason=f"undone: the audit trail did not record the {action.value}: {exc}",
                action="rollback",
                expect={"champion": change.version},
            )
        except FraudopsError as undo:
            raise StoreError(
                f"the {action.value} to version {change.version} was made but not recorded"
                f" in the audit trail, and could not be undone ({undo}): {exc}"
            ) from exc
        raise StoreError(
            f"the {action.value} was not recorded in the audit trail, so it was undone: {exc}"
        ) from exc
    return change


def _permission(action: AuditAction) -> Permission:
    permission = PERMISSION_OF.get(action)
    if permission is None:
        raise InputError(f"{action.value} is not a champion move (promotion or rollback)")
    return permission
