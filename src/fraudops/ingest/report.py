"""What an ingestion run did to each source, and in total.

Every record read is accounted for: ``received = accepted + duplicates + rejected`` holds
for each source and for the run, and is checked before a report is handed out. A source
that could not be read (a failed source) counts nothing as received: none of its records
reached the lake, and fixing and re-running it ingests it whole.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal

from fraudops.ingest.dedup import DuplicateCounts


@dataclass
class SourceReport:
    """The outcome of one source: counts, reasons, and whether it could be read."""

    source: str
    received: int = 0
    accepted: int = 0
    rejected: int = 0
    rejected_by_reason: dict[str, int] = field(default_factory=dict)
    duplicates_detail: DuplicateCounts = field(default_factory=DuplicateCounts)
    status: Literal["ok", "failed"] = "ok"
    error: str | None = None

    @property
    def duplicates(self) -> int:
        return self.duplicates_detail.total

    def check(self) -> None:
        """Raise if any record is unaccounted for: that is a bug, and must be loud."""
        if self.received != self.accepted + self.duplicates + self.rejected:
            raise AssertionError(
                f"{self.source}: received {self.received} != accepted {self.accepted}"
                f" + duplicates {self.duplicates} + rejected {self.rejected}"
            )
        if self.rejected != sum(self.rejected_by_reason.values()):
            raise AssertionError(f"{self.source}: rejected does not match its reasons")
        if self.status == "failed" and self.received:
            raise AssertionError(f"{self.source}: a failed source cannot have received records")

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "received": self.received,
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "duplicates_detail": self.duplicates_detail.to_dict(),
            "rejected": self.rejected,
            "rejected_by_reason": dict(sorted(self.rejected_by_reason.items())),
            "status": self.status,
            "error": self.error,
        }


@dataclass
class IngestReport:
    """The outcome of one ingestion run over all its sources."""

    run_id: str
    sources: list[SourceReport]
    labels: int = 0
    seconds: float = 0.0
    dead_letter: str | None = None

    @property
    def received(self) -> int:
        return sum(s.received for s in self.sources)

    @property
    def accepted(self) -> int:
        return sum(s.accepted for s in self.sources)

    @property
    def duplicates(self) -> int:
        return sum(s.duplicates for s in self.sources)

    @property
    def rejected(self) -> int:
        return sum(s.rejected for s in self.sources)

    @property
    def rejected_by_reason(self) -> dict[str, int]:
        total: Counter[str] = Counter()
        for source in self.sources:
            total.update(source.rejected_by_reason)
        return dict(sorted(total.items()))

    @property
    def duplicates_detail(self) -> DuplicateCounts:
        return DuplicateCounts(
            within_source=sum(s.duplicates_detail.within_source for s in self.sources),
            across_sources=sum(s.duplicates_detail.across_sources for s in self.sources),
            in_lake=sum(s.duplicates_detail.in_lake for s in self.sources),
            conflicting_duplicates=sum(
                s.duplicates_detail.conflicting_duplicates for s in self.sources
            ),
        )

    @property
    def failed_sources(self) -> list[dict[str, str]]:
        return [
            {"source": s.source, "error": s.error or "failed"}
            for s in self.sources
            if s.status == "failed"
        ]

    @property
    def nothing_read(self) -> bool:
        """True when every source failed: the run could not read anything at all."""
        return all(s.status == "failed" for s in self.sources)

    def check(self) -> None:
        """Raise if the run, or any source in it, does not reconcile."""
        for source in self.sources:
            source.check()
        if self.received != self.accepted + self.duplicates + self.rejected:
            raise AssertionError(f"run {self.run_id}: totals do not reconcile")

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "received": self.received,
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "duplicates_detail": self.duplicates_detail.to_dict(),
            "rejected": self.rejected,
            "rejected_by_reason": self.rejected_by_reason,
            "labels": self.labels,
            "failed_sources": self.failed_sources,
            "sources": [s.to_dict() for s in self.sources],
            "dead_letter": self.dead_letter,
            "seconds": round(self.seconds, 3),
        }
