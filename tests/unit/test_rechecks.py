"""How many re-checks a labeling queue holds and where they go (pipeline/stages/rechecks.py)."""

from __future__ import annotations

import pandas as pd
import pytest

from pipeline.stages.rechecks import QueuePlan, plan, with_rechecks


@pytest.mark.parametrize(
    ("limit", "share", "expected"),
    [(40, 0.25, 10), (90, 0.35, 32), (25, 0.1, 3), (45, 0.7, 32), (10, 0.0, 0), (1, 0.5, 1)],
)
def test_the_share_is_of_the_limit_rounded_half_up(limit, share, expected):
    assert plan(limit, share, unlabeled=10_000, candidates=10_000) == QueuePlan(limit - expected, expected)


def test_fewer_candidates_leave_room_for_new_rows_and_fewer_new_rows_a_shorter_queue():
    assert plan(40, 0.25, unlabeled=1_000, candidates=4) == QueuePlan(new=36, rechecks=4)
    assert plan(40, 0.25, unlabeled=5, candidates=1_000) == QueuePlan(new=5, rechecks=10)
    with pytest.raises(ValueError, match="recheck_share"):
        plan(40, 1.0, unlabeled=1, candidates=1)


def test_rechecks_keep_the_new_rows_order_and_depend_on_the_seed_and_salt_only():
    new = pd.DataFrame({"example_id": [f"n{i:02d}" for i in range(30)]})
    candidates = pd.DataFrame({"example_id": [f"c{i:02d}" for i in range(50)]})
    queue = with_rechecks(new, candidates, 10, seed=1, salt="ana")
    assert len(queue) == 40 and queue["example_id"].is_unique
    assert queue[queue["example_id"].str.startswith("n")]["example_id"].tolist() == new["example_id"].tolist()
    assert queue.equals(with_rechecks(new, candidates, 10, seed=1, salt="ana"))
    other = with_rechecks(new, candidates, 10, seed=1, salt="ben")
    chosen = set(queue["example_id"]) - set(new["example_id"])
    assert chosen != set(other["example_id"]) - set(new["example_id"])
    assert with_rechecks(new, candidates, 0, seed=1, salt="ana").equals(new)
