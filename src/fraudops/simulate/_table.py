"""The simulated transactions as an Arrow table with the handbook's column names."""

from __future__ import annotations

from datetime import date

import numpy as np
import pyarrow as pa

from fraudops.simulate._profiles import Terminals
from fraudops.simulate._transactions import SECONDS_PER_DAY, Transactions

HANDBOOK_SCHEMA = pa.schema(
    [
        pa.field("TRANSACTION_ID", pa.int64(), nullable=False),
        # Naive, meaning UTC, as in the handbook's dataset.
        pa.field("TX_DATETIME", pa.timestamp("us"), nullable=False),
        pa.field("CUSTOMER_ID", pa.int64(), nullable=False),
        pa.field("TERMINAL_ID", pa.int64(), nullable=False),
        pa.field("TX_AMOUNT", pa.float64(), nullable=False),
        pa.field("TX_TIME_SECONDS", pa.int64(), nullable=False),
        pa.field("TX_TIME_DAYS", pa.int64(), nullable=False),
        pa.field("TX_FRAUD", pa.int64(), nullable=False),
        pa.field("TX_FRAUD_SCENARIO", pa.int64(), nullable=False),
        pa.field("TERMINAL_X", pa.float64(), nullable=False),
        pa.field("TERMINAL_Y", pa.float64(), nullable=False),
    ]
)
"""The columns ``simulate`` returns, in order."""


def to_table(tx: Transactions, terminals: Terminals, start: date) -> pa.Table:
    """``tx`` (already in time order) as a HANDBOOK_SCHEMA table; ids are the row ranks."""
    epoch = np.datetime64(start.isoformat(), "us")
    when = epoch + (tx.seconds * 1_000_000).astype("timedelta64[us]")
    scenario = tx.scenario.astype(np.int64)
    columns = [
        np.arange(len(tx), dtype=np.int64),
        when,
        tx.customer,
        tx.terminal,
        tx.amount,
        tx.seconds,
        tx.seconds // SECONDS_PER_DAY,
        (scenario > 0).astype(np.int64),
        scenario,
        terminals.x[tx.terminal],
        terminals.y[tx.terminal],
    ]
    return pa.Table.from_arrays(
        [pa.array(c, type=f.type) for c, f in zip(columns, HANDBOOK_SCHEMA, strict=True)],
        schema=HANDBOOK_SCHEMA,
    )
