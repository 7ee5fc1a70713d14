"""Ingestion: sources (CSV, Parquet, JSON Lines) into the lake, validated and de-duplicated.

Accepted transactions and their dataset labels land in the lake; rejected records land in
the dead-letter store with a reason code; the report accounts for every record read.
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
