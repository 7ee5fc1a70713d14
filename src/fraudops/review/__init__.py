"""Human review: cases from decisions, the analysts' queue, verdicts → labels, users, audit.

The desk (:class:`ReviewDesk`, built by :func:`open_review_desk`) is what the API and the
UI call; it checks every permission. :class:`CaseIntake` opens cases from the decision
log in the background. Stores sit behind Protocols (:class:`CaseStore`,
:class:`UserStore`, :class:`AuditTrail`) with SQL implementations on SQLite or PostgreSQL,
whose schema the Alembic migrations in ``migrations/`` build.
"""

from fraudops.review.audit import AuditAction, AuditEntry, AuditTrail, SqlAuditTrail
from fraudops.review.capacity import (
    CapacityStatus,
    CapacityThreshold,
    capacity_status,
    review_threshold_for_capacity,
)
from fraudops.review.cases import (
    Case,
    CaseGroup,
    CaseKind,
    CaseOpening,
    CaseStatus,
    CaseStore,
    IntakeCursor,
    QueueStats,
    Verdict,
)
from fraudops.review.database import ReviewDatabase
from fraudops.review.decisions import DecisionReader, SqlDecisionReader
from fraudops.review.desk import ReviewDesk, VerdictResult, open_review_desk
from fraudops.review.intake import (
    CaseIntake,
    IntakeReport,
    audit_sampled,
    case_openings,
    open_cases,
)
from fraudops.review.permissions import PERMISSIONS, Permission, allowed, authorise
from fraudops.review.promotion import PERMISSION_OF, approver, move_champion
from fraudops.review.ratelimit import InMemorySignInLimiter, SignInLimiter, SqlSignInLimiter
from fraudops.review.store import SqlCaseStore
from fraudops.review.users import Role, SqlUserStore, User, UserStore

__all__ = [
    "PERMISSIONS",
    "PERMISSION_OF",
    "AuditAction",
    "AuditEntry",
    "AuditTrail",
    "CapacityStatus",
    "CapacityThreshold",
    "Case",
    "CaseGroup",
    "CaseIntake",
    "CaseKind",
    "CaseOpening",
    "CaseStatus",
    "CaseStore",
    "DecisionReader",
    "InMemorySignInLimiter",
    "IntakeCursor",
    "IntakeReport",
    "Permission",
    "QueueStats",
    "ReviewDatabase",
    "ReviewDesk",
    "Role",
    "SignInLimiter",
    "SqlAuditTrail",
    "SqlCaseStore",
    "SqlDecisionReader",
    "SqlSignInLimiter",
    "SqlUserStore",
    "User",
    "UserStore",
    "Verdict",
    "VerdictResult",
    "allowed",
    "approver",
    "audit_sampled",
    "authorise",
    "capacity_status",
    "case_openings",
    "move_champion",
    "open_cases",
    "open_review_desk",
    "review_threshold_for_capacity",
]
