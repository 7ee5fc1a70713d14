"""The handbook's three fraud scenarios, applied in its order so later ones overwrite labels.

1. large_amount: every transaction above 220 is fraud.
2. compromised_terminal: each day d, 2 terminals are drawn; all their transactions on days
   d … d+27 are fraud.
3. compromised_card: each day d, 3 customers are drawn; a third (int(n/3), without
   replacement) of their n transactions on days d … d+13 get their amount ×5 and are fraud.

Draws happen on days 0 … max_day-1 (max_day the last day with a transaction), as in the handbook.
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
    tx = large_amounts(tx)
    n_draw_days = int(tx.days.max()) if len(tx) else 0
    terminals = draw_daily(n_terminals, TERMINALS_PER_DAY, n_draw_days, rng)
    tx = compromised_terminals(tx, terminals)
    progress("frauds", 1, 2)
    customers = draw_daily(n_customers, CUSTOMERS_PER_DAY, n_draw_days, rng)
    tx = compromised_cards(tx, customers, rng)
    progress("frauds", 2, 2)
    return tx


def draw_daily(n_items: int, per_day: int, n_days: int, rng: np.random.Generator) -> IntArray:
    """Row d: the ``per_day`` distinct ids (of ``n_items``) drawn on day d."""
    k = min(per_day, n_items)
    rows = [rng.choice(n_items, size=k, replace=False) for _ in range(n_days)]
    return np.array(rows, dtype=np.int64).reshape(n_days, k)


def large_amounts(tx: Transactions) -> Transactions:
    """Scenario 1: every amount above 220 is fraud."""
    return tx.relabelled(np.flatnonzero(tx.amount > LARGE_AMOUNT), 1)


def compromised_terminals(tx: Transactions, schedule: IntArray) -> Transactions:
    """Scenario 2: terminals in row d of ``schedule`` take only fraud on days d … d+27."""
    if len(tx) == 0:
        return tx
    days = tx.days
    n_terminals = int(max(tx.terminal.max(), schedule.max(initial=0))) + 1
    compromised = np.zeros((n_terminals, int(days.max()) + 1), dtype=bool)
    for day, terminals in enumerate(schedule):
        compromised[terminals, day : day + TERMINAL_WINDOW_DAYS] = True
    return tx.relabelled(np.flatnonzero(compromised[tx.terminal, days]), 2)


def compromised_cards(
    tx: Transactions, schedule: IntArray, rng: np.random.Generator
) -> Transactions:
    """Scenario 3: a third of the day-d..d+13 transactions of row d's customers, amount ×5."""
    if len(tx) == 0:
        return tx
    # Each customer's transactions in time order, so a window is two binary searches.
    by_customer = np.lexsort((tx.seconds, tx.customer))
    n_customers = int(max(tx.customer.max(), schedule.max(initial=0))) + 1
    customer_start = np.searchsorted(tx.customer[by_customer], np.arange(n_customers + 1))
    sorted_days = tx.days[by_customer]
    amount = tx.amount.copy()
    labels = tx.scenario.copy()
    for day, customers in enumerate(schedule):
        windows = []
        for customer in customers:
            lo, hi = customer_start[customer], customer_start[customer + 1]
            first, last = lo + np.searchsorted(
                sorted_days[lo:hi], [day, day + CARD_WINDOW_DAYS], side="left"
            )
            windows.append(by_customer[first:last])
        candidates = np.concatenate(windows)
        picked = rng.choice(
            candidates, size=len(candidates) // CARD_SHARE_DIVISOR, replace=False, shuffle=False
        )
        # Amounts compound when a card is drawn again while an earlier window is open, as in
        # the handbook, which scales the current amounts on every draw.
        amount[picked] = np.round(amount[picked] * CARD_AMOUNT_FACTOR, 2)
        labels[picked] = 3
    return Transactions(
        customer=tx.customer,
        terminal=tx.terminal,
        seconds=tx.seconds,
        amount=amount,
        scenario=labels,
    )
