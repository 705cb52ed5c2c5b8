"""Labels from several annotators (pipeline.store.labels and the views of migration 0006), on both
backends: three generated annotators (one careful, one noisy, one who always picks the same
class) over several nights. Every label is kept, the resolved label follows the rule, the
agreement figures and Cohen's kappa are scikit-learn's on the same rows, the always-same
annotator is flagged, and examples whose labels conflict stay out of training."""

from __future__ import annotations

import json
from collections import Counter
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from sklearn.metrics import cohen_kappa_score

from pipeline.stages.agreement import AgreementSettings, annotator_table, flagged, pair_agreement
from pipeline.store import labels, prediction_log, registry
from pipeline.store.tables import feedback
from pipeline.store.views import (
    annotator_agreement_view,
    label_conflicts_daily_view,
    prediction_quality_daily_view,
    resolved_labels_view,
)

CLASSES = ("cat", "dog", "bird")
NIGHTS = [date(2026, 11, 2) + timedelta(days=offset) for offset in range(4)]
PER_NIGHT = 30


def _truth() -> dict[str, str]:
    rng = np.random.default_rng(7)
    ids = [f"n{night}-{index:03d}" for night in range(len(NIGHTS)) for index in range(PER_NIGHT)]
    return dict(zip(ids, rng.choice(CLASSES, len(ids))))


def _annotations(truth: dict[str, str]) -> pd.DataFrame:
    """careful: always right; noisy: wrong a quarter of the time; same: always "cat". Each labels
    most examples, so some have one, two or three labels."""
    rng = np.random.default_rng(11)
    rows = []
    for example_id, label in truth.items():
        if rng.random() < 0.85:
            rows.append((example_id, "careful", label))
        if rng.random() < 0.8:
            wrong = rng.random() < 0.25
            rows.append((example_id, "noisy", rng.choice([c for c in CLASSES if c != label]) if wrong else label))
        if rng.random() < 0.7:
            rows.append((example_id, "same", "cat"))
    return pd.DataFrame(rows, columns=["example_id", "annotator", "label"])


def _predict(engine, truth: dict[str, str]) -> None:
    registry.register(
        engine,
        version="m1",
        run_id=None,
        path="models/m1",
        sha256="0" * 64,
        task="classification",
        data_version="d1",
        evaluation_path=None,
        headline=None,
        metrics=None,
        actor="alice",
    )
    ids = list(truth)
    for night_index, night in enumerate(NIGHTS):
        part = ids[night_index * PER_NIGHT : (night_index + 1) * PER_NIGHT]
        frame = pd.DataFrame({"example_id": part, "prediction": _predicted(part), "score": 0.6})
        frame["probabilities"] = json.dumps({"cat": 0.6})
        prediction_log.load_batch(
            engine, batch_date=night, model_version="m1", predictions=frame, rows_in=len(part), rows_rejected=0
        )


def _predicted(ids: list[str]) -> list[str]:
    """The model's guess: the classes in turn, so that quality and conflicts differ by class."""
    return [CLASSES[int(example_id[-3:]) % len(CLASSES)] for example_id in ids]


def _load_by_night(engine, annotations: pd.DataFrame, tie_order=()) -> None:
    """Each night's labels arrive as one file per annotator, a night after the predictions."""
    for night_index in range(len(NIGHTS)):
        tonight = annotations[annotations["example_id"].str.startswith(f"n{night_index}-")]
        for annotator, own in tonight.groupby("annotator"):
            file = f"feedback/{NIGHTS[night_index] + timedelta(days=1)}/{annotator}.csv"
            labels.load_feedback(
                engine, own.assign(source=file), source=file, tie_order=tie_order, pair_agreement=pair_agreement
            )


def _resolve(votes: list[tuple[str, str]], tie_order: tuple[str, ...]) -> tuple[str | None, str]:
    """The documented rule, written independently of the SQL: (label, status)."""
    counts = Counter(label for _, label in votes)
    top = max(counts.values())
    tied = sorted(label for label, count in counts.items() if count == top)
    if len(counts) == 1:
        return tied[0], "unanimous"
    if len(tied) == 1:
        return tied[0], "majority"
    ranks = {name: rank for rank, name in enumerate(tie_order)}
    best = {
        label: min((ranks[a] for a, given in votes if given == label and a in ranks), default=None) for label in tied
    }
    ranked = [label for label in tied if best[label] is not None]
    if not ranked:
        return None, "unresolved"
    return min(ranked, key=lambda label: best[label]), "tie_broken"


def _agreement(engine) -> tuple[pd.DataFrame, pd.DataFrame]:
    per_annotator, pairs = labels.agreement_rows(engine)
    return annotator_table(per_annotator, pairs, AgreementSettings()), pairs


def _select(engine, table) -> pd.DataFrame:
    with engine.connect() as connection:
        return pd.DataFrame(connection.execute(sa.select(table)).mappings().all())


@pytest.fixture
def annotated(engine):
    truth = _truth()
    annotations = _annotations(truth)
    _predict(engine, truth)
    _load_by_night(engine, annotations, tie_order=("careful",))
    return engine, truth, annotations


def test_every_label_is_kept_with_its_annotator_and_file(annotated):
    engine, _, annotations = annotated
    stored = _select(engine, feedback)
    assert len(stored) == len(annotations)
    kept = set(zip(stored["example_id"], stored["annotator"], stored["label"]))
    assert kept == set(zip(annotations["example_id"], annotations["annotator"], annotations["label"]))
    assert stored["source"].str.match(r"feedback/\d{4}-\d\d-\d\d/(careful|noisy|same)\.csv").all()
    assert (stored["source"].str.extract(r"/(\w+)\.csv$")[0] == stored["annotator"]).all()


@pytest.mark.parametrize("tie_order", [("careful",), (), ("same", "noisy")])
def test_resolved_labels_follow_the_rule(engine, tie_order):
    truth = _truth()
    annotations = _annotations(truth)
    _predict(engine, truth)
    _load_by_night(engine, annotations, tie_order=tie_order)
    resolved = _select(engine, resolved_labels_view).set_index("example_id")
    expected = {
        example_id: _resolve(list(zip(group["annotator"], group["label"])), tie_order)
        for example_id, group in annotations.groupby("example_id")
    }
    assert set(resolved.index) == set(expected)
    got = {
        example_id: (None if pd.isna(row["label"]) else row["label"], row["status"])
        for example_id, row in resolved.iterrows()
    }
    assert got == expected
    statuses = Counter(status for _, status in expected.values())
    assert statuses["majority"] > 0 and statuses["unanimous"] > 0  # the data tries every branch
    assert statuses["tie_broken" if tie_order else "unresolved"] > 0


def test_agreement_and_kappa_match_scikit_learn_on_the_same_rows(annotated):
    engine, _, annotations = annotated
    per_annotator, pairs = _agreement(engine)
    resolved = _select(engine, resolved_labels_view).set_index("example_id")
    joined = annotations.join(resolved[["label", "annotators"]].rename(columns={"label": "resolved"}), on="example_id")
    compared = joined[joined["annotators"] > 1]  # an unresolved example counts, as agreeing with nobody
    for row in per_annotator.itertuples():
        own = compared[compared["annotator"] == row.annotator]
        assert row.labels == (annotations["annotator"] == row.annotator).sum()
        assert row.compared == len(own)
        assert row.agreement == pytest.approx((own["label"] == own["resolved"]).mean())

    wide = annotations.pivot(index="example_id", columns="annotator", values="label")
    for row in pairs.itertuples():
        both = wide[[row.annotator, row.other]].dropna()
        assert row.overlap == len(both)
        assert row.agreement == pytest.approx((both[row.annotator] == both[row.other]).mean())
        expected = cohen_kappa_score(both[row.annotator], both[row.other])
        assert row.kappa == pytest.approx(expected, abs=1e-12)
    assert len(pairs) == 6  # three annotators, each pair both ways round
    kappa = {(row.annotator, row.other): row.kappa for row in pairs.itertuples()}
    assert kappa["careful", "noisy"] > 0.6
    assert kappa["careful", "same"] == pytest.approx(0.0) == kappa["noisy", "same"]  # always "cat": chance
    partner = dict(zip(per_annotator["annotator"], per_annotator["kappa"]))
    assert partner["same"] == pytest.approx(0.0) and partner["careful"] > partner["same"]


def test_the_annotator_who_always_picks_one_class_is_flagged(annotated):
    engine, _, _ = annotated
    per_annotator, _ = _agreement(engine)
    flags = dict(zip(per_annotator["annotator"], flagged(per_annotator, AgreementSettings(min_agreement=0.7))))
    assert flags == {"careful": False, "noisy": False, "same": True}
    too_few = flagged(per_annotator, AgreementSettings(min_agreement=0.7, min_compared=10_000))
    assert not too_few.any()  # no verdict on too few compared labels


def test_conflicting_examples_stay_out_of_training(annotated):
    engine, _, annotations = annotated
    agreed = labels.agreed_labels(engine)
    distinct = annotations.groupby("example_id")["label"].nunique()
    assert set(agreed.labels["example_id"]) == set(distinct[distinct == 1].index)
    assert agreed.conflicting == int((distinct > 1).sum()) > 0
    first = annotations.drop_duplicates("example_id").set_index("example_id")["label"]
    assert (agreed.labels.set_index("example_id")["label"] == first[agreed.labels["example_id"]]).all()


def test_quality_and_conflicts_by_night_count_resolved_labels(annotated):
    engine, _, annotations = annotated
    resolved = _select(engine, resolved_labels_view)
    resolved["predicted"] = _predicted(resolved["example_id"].tolist())
    quality = _select(engine, prediction_quality_daily_view).set_index("batch_date")
    conflicts = _select(engine, label_conflicts_daily_view).set_index(["batch_date", "predicted_class"])
    assert len(conflicts) == len(NIGHTS) * len(CLASSES)
    for night_index, night in enumerate(NIGHTS):
        tonight = resolved[resolved["example_id"].str.startswith(f"n{night_index}-")]
        usable = tonight[tonight["label"].notna()]
        assert quality.loc[night, "labeled"] == len(usable)
        assert quality.loc[night, "accuracy"] == pytest.approx((usable["label"] == usable["predicted"]).mean())
        for predicted, several in tonight[tonight["annotators"] > 1].groupby("predicted"):
            row = conflicts.loc[(night, predicted)]
            assert row["relabeled"] == len(several)
            assert row["conflict_share"] == pytest.approx((several["distinct_labels"] > 1).mean())


def test_an_annotator_s_new_label_replaces_only_their_own(engine):
    labels.load_feedback(
        engine, pd.DataFrame({"example_id": ["a"], "label": ["cat"], "annotator": ["ann"]}), source="1"
    )
    labels.load_feedback(
        engine, pd.DataFrame({"example_id": ["a"], "label": ["dog"], "annotator": ["bob"]}), source="2"
    )
    labels.load_feedback(
        engine, pd.DataFrame({"example_id": ["a"], "label": ["dog"], "annotator": ["ann"]}), source="3"
    )
    stored = _select(engine, feedback).set_index("annotator")
    assert stored["label"].to_dict() == {"ann": "dog", "bob": "dog"}
    row = _select(engine, resolved_labels_view).iloc[0]
    assert (row["label"], row["status"], row["annotators"], row["agreeing"]) == ("dog", "unanimous", 2, 2)


def test_a_tie_goes_to_the_label_of_the_best_placed_annotator_not_to_their_group(engine):
    # cat from ann and bob, dog from cy and dee, bird from eve: first in the order is eve, whose
    # label is not tied; the tie goes to dog (dee comes before ann and bob), not to eve's bird.
    votes = {"ann": "cat", "bob": "cat", "cy": "dog", "dee": "dog", "eve": "bird"}
    for annotator, label in votes.items():
        frame = pd.DataFrame({"example_id": ["x"], "label": [label], "annotator": [annotator]})
        labels.load_feedback(engine, frame, source=f"{annotator}.csv", tie_order=("eve", "dee", "ann"))
    row = _select(engine, resolved_labels_view).iloc[0]
    assert (row["label"], row["status"], row["agreeing"], row["distinct_labels"]) == ("dog", "tie_broken", 2, 3)
    assert _resolve(list(votes.items()), ("eve", "dee", "ann")) == ("dog", "tie_broken")

    # A load that names no order leaves the stored ranks alone (a script, a test fixture).
    labels.load_feedback(engine, pd.DataFrame({"example_id": ["y"], "label": ["cat"]}), source="s.csv")
    assert _select(engine, resolved_labels_view).set_index("example_id").loc["x", "label"] == "dog"
    labels.load_feedback(engine, pd.DataFrame({"example_id": ["y"], "label": ["cat"]}), source="s.csv", tie_order=())
    assert _select(engine, resolved_labels_view).set_index("example_id").loc["x", "status"] == "unresolved"


def test_annotator_agreement_answers_plain_sql(annotated):
    engine, _, _ = annotated
    with engine.connect() as connection:
        rows = connection.execute(
            sa.text("SELECT annotator, labels, agreement FROM annotator_agreement ORDER BY annotator")
        ).all()
        kappas = connection.execute(sa.text("SELECT annotator, other, kappa FROM annotator_pairs")).all()
    assert [row[0] for row in rows] == ["careful", "noisy", "same"]
    assert all(0 <= row[2] <= 1 for row in rows) and len(kappas) == 6
    view = _select(engine, annotator_agreement_view)
    assert set(view.columns) >= {"annotator", "labels", "compared", "agreed", "agreement"}
