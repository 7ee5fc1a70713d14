"""The handbook's three fraud scenarios, applied in its order so later ones overwrite labels.

1. large_amount: every transaction above 220 is fraud.
2. compromised_terminal: each day d, 2 terminals are drawn; all their transactions on days
   d … d+27 are fraud.
3. compromised_card: each day d, 3 customers are drawn; a third (int(n/3), without
   replacement) of their n transactions on days d … d+13 get their amount ×5 and are fraud.
"""

from __future__ import annotations

import numpy as np

from fraudops.progress import Progress, no_progress
from fraudops.simulate._profiles import IntArray
from fraudops.simulate._transactions import Transactions

LARGE_AMOUNT = 220.0
TERMINALS_PER_DAY = 2
TERMINAL_WINDOW_DAYS = 28
CUSTOMERS_PER_DAY = 3
CARD_WINDOW_DAYS = 14
CARD_SHARE_DIVISOR = 3
CARD_AMOUNT_FACTOR = 5.0


def add_handbook_frauds(
    tx: Transactions,
    n_customers: int,
    n_terminals: int,
    rng: np.random.Generator,
    progress: Progress = no_progress,
) -> Transactions:
    """Label ``tx`` with scenarios 1, 2 and 3; scenario 3 also scales the amounts it picks."""
    tx = tx.relabelled(np.flatnonzero(tx.amount > LARGE_AMOUNT), 1)
    if len(tx) == 0:
        return tx
    days = tx.days
    # Like the handbook, draws run over days 0 … max_day-1, the last day drawing nothing.
    n_draw_days = int(days.max())
    tx = _compromised_terminals(tx, days, n_terminals, n_draw_days, rng)
    progress("frauds", 1, 2)
    tx = _compromised_cards(tx, days, n_customers, n_draw_days, rng)
    progress("frauds", 2, 2)
    return tx


def _compromised_terminals(
    tx: Transactions, days: IntArray, n_terminals: int, n_draw_days: int, rng: np.random.Generator
) -> Transactions:
    n_days = int(days.max()) + 1
    compromised = np.zeros((n_terminals, n_days), dtype=bool)
    k = min(TERMINALS_PER_DAY, n_terminals)
    for day in range(n_draw_days):
        terminals = rng.choice(n_terminals, size=k, replace=False)
        compromised[terminals, day : day + TERMINAL_WINDOW_DAYS] = True
    return tx.relabelled(np.flatnonzero(compromised[tx.terminal, days]), 2)


def _compromised_cards(
    tx: Transactions, days: IntArray, n_customers: int, n_draw_days: int, rng: np.random.Generator
) -> Transactions:
    # Each customer's transactions in day order, so a window is two binary searches.
    by_customer = np.lexsort((tx.seconds, tx.customer))
    customer_start = np.searchsorted(tx.customer[by_customer], np.arange(n_customers + 1))
    sorted_days = days[by_customer]
    amount = tx.amount.copy()
    labels = tx.scenario.copy()
    k = min(CUSTOMERS_PER_DAY, n_customers)
    for day in range(n_draw_days):
        customers = rng.choice(n_customers, size=k, replace=False)
        windows = []
        for customer in customers:
            lo, hi = customer_start[customer], customer_start[customer + 1]
            first = lo + np.searchsorted(sorted_days[lo:hi], day, side="left")
            last = lo + np.searchsorted(sorted_days[lo:hi], day + CARD_WINDOW_DAYS, side="left")
            windows.append(by_customer[first:last])
        candidates = np.concatenate(windows)
        picked = rng.choice(
            candidates, size=len(candidates) // CARD_SHARE_DIVISOR, replace=False, shuffle=False
        )
        # Amounts compound when a card is drawn again while its earlier window is still open,
        # as in the handbook, which scales the current amounts on every draw.
        amount[picked] = np.round(amount[picked] * CARD_AMOUNT_FACTOR, 2)
        labels[picked] = 3
    return Transactions(
        customer=tx.customer,
        terminal=tx.terminal,
        seconds=tx.seconds,
        amount=amount,
        scenario=labels,
    )
