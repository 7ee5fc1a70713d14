"""Sending a verdict's labels to the label sink, and saying in words what became of them.

A verdict's labels (the case's own, then those of the payments disowned with it) are sent
one by one, and one that fails does not stop the others. The message groups them by what
became of them: ``tx-1: stored for training and applied to the online state.``
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import structlog

from fraudops.api.ui.parts import LabelSink
from fraudops.errors import FraudopsError
from fraudops.types import Label

_log = structlog.get_logger("fraudops.review_ui")

NAMED = 4
"""Transactions named in a message before the rest are counted ("and 5 more")."""


@dataclass(frozen=True, slots=True)
class Sent:
    """What the sink answered for each label, and the labels it failed on."""

    accounts: tuple[tuple[Label, str], ...]
    failures: tuple[tuple[Label, FraudopsError], ...]


async def send_labels(sink: LabelSink, labels: Sequence[Label]) -> Sent:
    """Send each label to ``sink``; a failure is kept with its label and logged."""
    accounts: list[tuple[Label, str]] = []
    failures: list[tuple[Label, FraudopsError]] = []
    for label in labels:
        try:
            accounts.append((label, await sink(label)))
        except FraudopsError as exc:
            _log.error(
                "review_ui.label_not_applied", transaction_id=label.transaction_id, error=str(exc)
            )
            failures.append((label, exc))
    return Sent(tuple(accounts), tuple(failures))


def report(sent: Sent) -> tuple[str, str]:
    """What became of the labels, in words, and the flash kind (a warning if any failed)."""
    total = len(sent.accounts) + len(sent.failures)
    if total == 0:
        return "", "info"
    parts: list[str] = []
    if total == 1 and sent.accounts:
        parts.append(f"Its label was {sent.accounts[0][1]}.")
    else:
        grouped: dict[str, list[str]] = {}
        for label, account in sent.accounts:
            grouped.setdefault(account, []).append(label.transaction_id)
        parts += [f"{names(ids)}: {account}." for account, ids in grouped.items()]
    if not sent.failures:
        return " ".join(parts), "info"
    missed = len(sent.failures)
    if total == 1:
        what, them = "its label was", "it"
    else:
        what = f"{missed} label{' was' if missed == 1 else 's were'}"
        them = "it" if missed == 1 else "them"
    parts.append(
        f"The verdict is saved, but {what} not applied: {sent.failures[0][1]}."
        f' Send {them} again with "Send its labels again" on the case page.'
    )
    return " ".join(parts), "warning"


def names(ids: Sequence[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``; past :data:`NAMED`, ``a, b, c, d and 5 more``."""
    if len(ids) > NAMED:
        return f"{', '.join(ids[:NAMED])} and {len(ids) - NAMED} more"
    if len(ids) <= 1:
        return "".join(ids)
    return f"{', '.join(ids[:-1])} and {ids[-1]}"
