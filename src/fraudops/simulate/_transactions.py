"""The genuine transaction stream: each customer's daily card use, vectorised over customers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from fraudops.progress import Progress, no_progress
from fraudops.simulate._profiles import Customers, FloatArray, IntArray, Reach

SECONDS_PER_DAY = 86_400
TIME_OF_DAY_MEAN = SECONDS_PER_DAY / 2
TIME_OF_DAY_STD = 20_000.0


@dataclass(frozen=True)
class Transactions:
    """Columns of a transaction table, in TX_DATETIME order once ``sorted_by_time`` is applied."""

    customer: IntArray
    terminal: IntArray
    seconds: IntArray
    amount: FloatArray
    scenario: npt.NDArray[np.int8]

    def __len__(self) -> int:
        return len(self.customer)

    @property
    def days(self) -> IntArray:
        return self.seconds // SECONDS_PER_DAY

    def take(self, index: npt.NDArray[np.intp] | IntArray) -> Transactions:
        return Transactions(
            customer=self.customer[index],
            terminal=self.terminal[index],
            seconds=self.seconds[index],
            amount=self.amount[index],
            scenario=self.scenario[index],
        )

    def sorted_by_time(self) -> Transactions:
        # Stable, so simultaneous transactions keep the order they were generated in.
        return self.take(np.argsort(self.seconds, kind="stable"))

    def relabelled(self, index: IntArray, scenario: int) -> Transactions:
        labels = self.scenario.copy()
        labels[index] = scenario
        return replace(self, scenario=labels)


def concatenate(parts: Sequence[Transactions]) -> Transactions:
    """One table holding the rows of ``parts`` in order."""
    return Transactions(
        customer=np.concatenate([np.empty(0, np.int64)] + [p.customer for p in parts]),
        terminal=np.concatenate([np.empty(0, np.int64)] + [p.terminal for p in parts]),
        seconds=np.concatenate([np.empty(0, np.int64)] + [p.seconds for p in parts]),
        amount=np.concatenate([np.empty(0, np.float64)] + [p.amount for p in parts]),
        scenario=np.concatenate([np.empty(0, np.int8)] + [p.scenario for p in parts]),
    )


def generate(
    customers: Customers,
    reach: Reach,
    n_days: int,
    rng: np.random.Generator,
    progress: Progress = no_progress,
) -> Transactions:
    """Every customer's transactions for days ``0 … n_days-1``, sorted by time.

    Per customer and day: Poisson(mean_nb_tx_per_day) transactions; each gets a time of day
    int(N(43200, 20000)) and is dropped unless 0 < t < 86400; an amount N(mean, std), a negative
    one redrawn once from U(0, 2·mean), rounded to cents; a terminal uniform among the
    customer's reachable ones. Customers who reach no terminal make no transactions.
    """
    n_reach = reach.counts
    days: list[Transactions] = []
    for day in range(n_days):
        n_tx = rng.poisson(customers.mean_nb_tx_per_day)
        who = np.repeat(np.arange(len(customers), dtype=np.int64), n_tx)
        time_of_day = np.trunc(rng.normal(TIME_OF_DAY_MEAN, TIME_OF_DAY_STD, len(who)))
        amount = rng.normal(customers.mean_amount[who], customers.std_amount[who])
        negative = amount < 0
        amount[negative] = rng.uniform(0.0, 2.0 * customers.mean_amount[who[negative]])
        pick = rng.random(len(who))
        keep = (time_of_day > 0) & (time_of_day < SECONDS_PER_DAY) & (n_reach[who] > 0)
        who, time_of_day, amount, pick = who[keep], time_of_day[keep], amount[keep], pick[keep]
        slot = np.minimum((pick * n_reach[who]).astype(np.int64), n_reach[who] - 1)
        days.append(
            Transactions(
                customer=who,
                terminal=reach.terminals[reach.offsets[who] + slot],
                seconds=time_of_day.astype(np.int64) + day * SECONDS_PER_DAY,
                amount=np.round(amount, 2),
                scenario=np.zeros(len(who), np.int8),
            ).sorted_by_time()
        )
        progress("transactions", day + 1, n_days)
    return concatenate(days)
