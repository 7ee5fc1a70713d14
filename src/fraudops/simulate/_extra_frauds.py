"""Fraud scenarios the handbook lacks; each adds new transactions rather than relabelling.

4. card_testing — on a day, with probability 0.25, 1–3 cards are tested: each gets 3–6 tiny
   amounts U(0.50, 2.00), every one at a different terminal, 20–120 s apart, then one large
   amount U(150, 500) 1–10 min later at yet another terminal. All burst transactions are fraud.
   About 0.5 cards × 5.5 transactions a day: ≈ 500 frauds on the default 183 days.
5. account_takeover — each day Poisson(0.3) cards are taken over: 3–8 new transactions spread
   over 1–3 days, at night (00:00–05:00), at terminals more than 30 grid units from the
   customer's home (so never ones it used), for U(1, 3) × its mean amount. ≈ 300 frauds on the
   default 183 days.

Each scenario draws from its own random stream, so turning one on changes nothing else.
"""

from __future__ import annotations

import numpy as np

from fraudops.simulate._profiles import Customers, Terminals
from fraudops.simulate._transactions import SECONDS_PER_DAY, Transactions, concatenate

CARD_TESTING = 4
BURST_DAY_PROBABILITY = 0.25
BURST_CARDS = (1, 3)
BURST_TINY_TX = (3, 6)
TINY_AMOUNT = (0.5, 2.0)
TINY_GAP_SECONDS = (20, 120)
LARGE_AMOUNT = (150.0, 500.0)
LARGE_GAP_SECONDS = (60, 600)
# Late enough in the day that even the longest burst ends before midnight.
LATEST_BURST_START = SECONDS_PER_DAY - 3600

ACCOUNT_TAKEOVER = 5
TAKEOVERS_PER_DAY = 0.3
TAKEOVER_TX = (3, 8)
TAKEOVER_DAYS = (1, 3)
FAR_FROM_HOME = 30.0
NIGHT_END_SECONDS = 5 * 3600
TAKEOVER_AMOUNT_FACTOR = (1.0, 3.0)


def card_testing(
    n_customers: int, n_terminals: int, n_days: int, rng: np.random.Generator
) -> Transactions:
    """Bursts of tiny amounts at many terminals within minutes, then one large amount."""
    bursts: list[Transactions] = []
    for day in range(n_days):
        if rng.random() >= BURST_DAY_PROBABILITY:
            continue
        n_cards = int(rng.integers(BURST_CARDS[0], BURST_CARDS[1] + 1))
        for customer in rng.choice(n_customers, size=min(n_cards, n_customers), replace=False):
            n_tiny = int(rng.integers(BURST_TINY_TX[0], BURST_TINY_TX[1] + 1))
            n_tx = min(n_tiny + 1, n_terminals)
            gaps = rng.integers(TINY_GAP_SECONDS[0], TINY_GAP_SECONDS[1] + 1, n_tx)
            gaps[-1] = rng.integers(LARGE_GAP_SECONDS[0], LARGE_GAP_SECONDS[1] + 1)
            start = day * SECONDS_PER_DAY + int(rng.integers(1, LATEST_BURST_START))
            amount = np.round(rng.uniform(TINY_AMOUNT[0], TINY_AMOUNT[1], n_tx), 2)
            amount[-1] = round(float(rng.uniform(*LARGE_AMOUNT)), 2)
            bursts.append(
                Transactions(
                    customer=np.full(n_tx, customer, np.int64),
                    terminal=rng.choice(n_terminals, size=n_tx, replace=False).astype(np.int64),
                    seconds=start + np.cumsum(gaps) - gaps[0],
                    amount=amount,
                    scenario=np.full(n_tx, CARD_TESTING, np.int8),
                )
            )
    return concatenate(bursts)


def account_takeover(
    customers: Customers,
    terminals: Terminals,
    n_days: int,
    radius: float,
    rng: np.random.Generator,
) -> Transactions:
    """A card suddenly used at night, far from home, at terminals it never used."""
    far_enough = max(FAR_FROM_HOME, radius)
    takeovers: list[Transactions] = []
    for day in range(n_days):
        for customer in rng.choice(len(customers), size=rng.poisson(TAKEOVERS_PER_DAY)):
            distance = np.hypot(
                terminals.x - customers.x[customer], terminals.y - customers.y[customer]
            )
            far = np.flatnonzero(distance > far_enough)
            n_tx = int(rng.integers(TAKEOVER_TX[0], TAKEOVER_TX[1] + 1))
            span = int(rng.integers(TAKEOVER_DAYS[0], TAKEOVER_DAYS[1] + 1))
            tx_day = day + rng.integers(0, span, n_tx)
            time_of_day = rng.integers(1, NIGHT_END_SECONDS, n_tx)
            factor = rng.uniform(*TAKEOVER_AMOUNT_FACTOR, n_tx)
            pick = rng.integers(0, max(len(far), 1), n_tx)
            keep = tx_day < n_days
            # Checked after drawing, so a card with nowhere far to go does not shift later draws.
            if len(far) == 0:
                continue
            takeovers.append(
                Transactions(
                    customer=np.full(int(keep.sum()), customer, np.int64),
                    terminal=far[pick[keep]].astype(np.int64),
                    seconds=(tx_day * SECONDS_PER_DAY + time_of_day)[keep].astype(np.int64),
                    amount=np.round(customers.mean_amount[customer] * factor[keep], 2),
                    scenario=np.full(int(keep.sum()), ACCOUNT_TAKEOVER, np.int8),
                )
            )
    return concatenate(takeovers)
