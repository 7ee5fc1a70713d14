"""Ingestion: sources (CSV, Parquet, JSON Lines) into the lake, validated and de-duplicated.

Accepted transactions and their dataset labels land in the lake; rejected records land in
the dead-letter store with a reason code; the report accounts for every record read
(``received = accepted + duplicates + rejected``, per source and in total).

A source that cannot be read (missing, truncated, wrong encoding, missing columns, broken
CSV structure) is a failed source: it counts zero records received, and none of its rows
land, even those before the point where it broke; fixed and re-run, it lands whole.

A label found in a source becomes a ``dataset`` label. Its ``known_at`` is the mapping's
``label_known_at`` column where there is one, else the transaction's own time: a file does
not say when its labels were learnt, so the feature definition's label delay is what keeps
training honest.
"""

from fraudops.ingest.mapping import ColumnMapping, load_mapping
from fraudops.ingest.report import IngestReport, SourceReport
from fraudops.ingest.run import ingest_sources
from fraudops.ingest.validate import REASONS

__all__ = [
    "REASONS",
    "ColumnMapping",
    "IngestReport",
    "SourceReport",
    "ingest_sources",
    "load_mapping",
]
