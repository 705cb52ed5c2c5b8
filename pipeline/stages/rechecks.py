"""Quality-control re-checks in a labeling queue (monitoring stage): a share of an annotator's queue
is examples someone else already labeled, chosen at random with a seed, so that agreement between
annotators is measured all the time and not only when two happen to label the same example.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class QueuePlan:
    """How many rows of each kind a queue of `limit` rows holds."""

    new: int  # unlabeled predictions, least confident first
    rechecks: int  # examples others labeled, for this annotator to label blind


def plan(limit: int, share: float, *, unlabeled: int, candidates: int) -> QueuePlan:
    """round(limit x share) re-checks, fewer only where fewer examples can be re-checked, and
    new rows for the rest of the limit, as many as the night has.

    The share is of the queue asked for, so two annotators asking for the same limit get the same
    number of re-checks; a night with few unlabeled rows makes a shorter queue, not more re-checks.
    """
    if not 0.0 <= share < 1.0:
        raise ValueError(f"[labeling] recheck_share must be at least 0 and below 1, not {share}")
    # Half up, in decimal: 2.5 re-checks are 3, and 90 x 0.35 is 31.5, not 31.4999...
    rechecks = min(int(Decimal(limit) * Decimal(str(share)) + Decimal("0.5")), candidates)
    return QueuePlan(new=min(limit - rechecks, unlabeled), rechecks=rechecks)


def with_rechecks(new: pd.DataFrame, candidates: pd.DataFrame, count: int, *, seed: int, salt: str) -> pd.DataFrame:
    """`new` in its order, with `count` rows of `candidates` chosen at random put at random places.

    The choice depends on the seed and the salt (the annotator and the night), nothing else: the
    same command gives the same file, and two annotators get different re-checks. Nothing in the
    file tells a re-check from a new row: the annotator labels it blind.
    """
    if not count:
        return new.reset_index(drop=True)
    rng = np.random.default_rng([seed, zlib.crc32(salt.encode("utf-8"))])
    chosen = candidates.iloc[rng.choice(len(candidates), size=count, replace=False)]
    places = np.zeros(len(new) + count, dtype=bool)
    places[rng.choice(len(places), size=count, replace=False)] = True
    order = np.empty(len(places), dtype=np.int64)
    order[~places] = np.arange(len(new))  # new rows keep their order: least confident first
    order[places] = len(new) + np.arange(count)
    return pd.concat([new, chosen], ignore_index=True).iloc[order].reset_index(drop=True)
