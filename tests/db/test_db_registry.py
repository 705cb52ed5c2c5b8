"""The model registry (pipeline.store.registry), on SQLite and PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC
from pathlib import Path

import pytest
import sqlalchemy as sa

from pipeline.store import database, ledger, registry
from pipeline.store.registry import RegistryError

REPO_ROOT = Path(__file__).resolve().parents[2]


def _register(engine, version, *, task="classification", headline=0.9, run_id=None, metrics=None):
    registry.register(
        engine,
        version=version,
        run_id=run_id,
        path=f"data/05_training/{version}",
        sha256="ab" * 32,
        task=task,
        data_version="d1",
        evaluation_path=f"data/06_evaluation/{version}",
        headline=headline,
        metrics=metrics if metrics is not None else {"accuracy": headline},
        actor="alice",
    )


def _stages(engine) -> dict[str, str]:
    return {row["version"]: row["stage"] for row in registry.versions(engine)}


def _production_count(engine) -> int:
    with engine.connect() as connection:
        return connection.execute(
            sa.text("SELECT count(*) FROM model_versions WHERE stage = 'production'")
        ).scalar_one()


def _event_names(engine, version=None) -> list[tuple[str, str]]:
    return [(event["version"], event["event"]) for event in registry.events(engine, version)]


def test_register_makes_a_candidate_once(engine):
    _register(engine, "m1", metrics={"accuracy": 0.9, "ece": float("nan")})
    _register(engine, "m1", headline=0.1)  # a second call changes nothing

    (row,) = registry.versions(engine)
    assert row["version"] == "m1"
    assert row["stage"] == "candidate"
    assert row["task"] == "classification"
    assert row["headline"] == pytest.approx(0.9)
    assert row["metrics"] == {"accuracy": 0.9, "ece": None}
    assert row["created_at"].tzinfo == UTC
    assert _event_names(engine) == [("m1", "register")]
    assert registry.events(engine)[0]["actor"] == "alice"
    assert registry.production(engine) is None


def test_a_rebuilt_model_gets_its_new_sha256_and_an_event_saying_why(engine):
    _register(engine, "m1")
    registry.promote(engine, "m1", actor="alice", reason="first")
    registry.rebuilt(engine, "m1", sha256="cd" * 32, actor="bob")
    registry.rebuilt(engine, "m1", sha256="cd" * 32, actor="bob")  # the same bytes again: nothing to record
    row = registry.find(engine, "m1")
    assert (row["sha256"], row["stage"]) == ("cd" * 32, "production")
    rebuilds = [e for e in registry.events(engine, "m1") if "rebuilt" in (e["reason"] or "")]
    assert [(e["event"], e["actor"]) for e in rebuilds] == [("register", "bob")]
    assert f"sha256 {'ab' * 8} -> {'cd' * 8}" in rebuilds[0]["reason"]
    assert registry.find(engine, "unknown") is None
    with pytest.raises(RegistryError, match="unknown model version"):
        registry.rebuilt(engine, "unknown", sha256="cd" * 32, actor="bob")


def test_register_links_the_training_run(engine):
    run_id = ledger.start_run(
        engine, task="TrainModel", params={}, version="m1", data_version=None, output_path="o", repo_dir=REPO_ROOT
    )
    _register(engine, "m1", run_id=run_id, headline=float("nan"))

    (row,) = registry.versions(engine)
    assert row["run_id"] == run_id
    assert row["headline"] is None


def test_register_rejects_an_unknown_run_and_task(engine):
    with pytest.raises(RegistryError, match="not in the ledger"):
        _register(engine, "m1", run_id="nope")
    with pytest.raises(RegistryError, match="task"):
        _register(engine, "m2", task="ranking")
    assert registry.versions(engine) == []
    assert registry.events(engine) == []


def test_first_promotion(engine):
    _register(engine, "m1")

    registry.promote(engine, "m1", actor="bob", reason="first model")

    assert registry.production(engine)["version"] == "m1"
    promote = registry.events(engine, "m1")[-1]
    assert (promote["event"], promote["actor"], promote["reason"]) == ("promote", "bob", "first model")
    assert promote["at"].tzinfo == UTC


def test_promote_archives_the_previous_production(engine):
    _register(engine, "m1")
    _register(engine, "m2", headline=0.5)  # worse: promote is gate-free
    registry.promote(engine, "m1", actor="bob", reason="first")

    registry.promote(engine, "m2", actor="carol", reason="manual override: newer data")

    assert _stages(engine) == {"m1": "archived", "m2": "production"}
    assert registry.production(engine)["version"] == "m2"
    assert _production_count(engine) == 1
    assert _event_names(engine) == [
        ("m1", "register"),
        ("m2", "register"),
        ("m1", "promote"),
        ("m1", "archive"),
        ("m2", "promote"),
    ]
    archive = registry.events(engine, "m1")[-1]
    assert archive["actor"] == "carol"
    assert "m2" in archive["reason"]


def test_exactly_one_production_through_many_changes(engine):
    for version in ("m1", "m2", "m3"):
        _register(engine, version)
    assert _production_count(engine) == 0
    for version in ("m1", "m2", "m3", "m1"):
        registry.promote(engine, version, actor="bob", reason="r")
        assert _production_count(engine) == 1
    registry.rollback(engine, actor="bob", reason="r")
    assert _production_count(engine) == 1


def test_the_database_refuses_a_second_production_model(engine):
    _register(engine, "m1")
    _register(engine, "m2")
    registry.promote(engine, "m1", actor="bob", reason="r")

    with pytest.raises(sa.exc.IntegrityError), engine.begin() as connection:
        connection.execute(sa.text("UPDATE model_versions SET stage = 'production' WHERE version = 'm2'"))
    assert _stages(engine) == {"m1": "production", "m2": "candidate"}


def test_promote_unknown_version_raises(engine):
    _register(engine, "m1")
    registry.promote(engine, "m1", actor="bob", reason="r")

    with pytest.raises(RegistryError, match="unknown model version 'nope'"):
        registry.promote(engine, "nope", actor="bob", reason="r")
    assert registry.production(engine)["version"] == "m1"


def test_promoting_the_production_model_again_changes_nothing(engine):
    _register(engine, "m1")
    registry.promote(engine, "m1", actor="bob", reason="r")
    before = registry.events(engine)

    registry.promote(engine, "m1", actor="bob", reason="again")

    assert registry.events(engine) == before
    assert registry.production(engine)["version"] == "m1"


def test_rollback_restores_the_previous_production(engine):
    for version in ("m1", "m2"):
        _register(engine, version)
    registry.promote(engine, "m1", actor="bob", reason="first")
    registry.promote(engine, "m2", actor="bob", reason="second")

    restored = registry.rollback(engine, actor="dave", reason="m2 misbehaves at night")

    assert restored == "m1"
    assert _stages(engine) == {"m1": "production", "m2": "archived"}
    rollback = registry.events(engine, "m1")[-1]
    assert (rollback["event"], rollback["actor"], rollback["reason"]) == ("rollback", "dave", "m2 misbehaves at night")
    archive = registry.events(engine, "m2")[-1]
    assert (archive["event"], archive["actor"]) == ("archive", "dave")
    assert _event_names(engine)[-2:] == [("m2", "archive"), ("m1", "rollback")]


def test_rollback_goes_to_the_model_before_the_current_one(engine):
    for version in ("m1", "m2", "m3"):
        _register(engine, version)
    for version in ("m1", "m2", "m3"):
        registry.promote(engine, version, actor="bob", reason="r")

    assert registry.rollback(engine, actor="bob", reason="r") == "m2"
    # m3 was in production before m2 came back: a second rollback undoes the first.
    assert registry.rollback(engine, actor="bob", reason="r") == "m3"
    assert _stages(engine) == {"m1": "archived", "m2": "archived", "m3": "production"}


def test_rollback_with_nothing_earlier_raises(engine):
    _register(engine, "m1")
    _register(engine, "m2")  # a candidate never in production is no rollback target
    with pytest.raises(RegistryError, match="no model is in production"):
        registry.rollback(engine, actor="bob", reason="r")

    registry.promote(engine, "m1", actor="bob", reason="r")
    events_before = registry.events(engine)
    with pytest.raises(RegistryError, match="nothing to roll back to"):
        registry.rollback(engine, actor="bob", reason="r")

    assert _stages(engine) == {"m1": "production", "m2": "candidate"}
    assert registry.events(engine) == events_before


def test_versions_are_newest_first(engine):
    for version in ("m1", "m2", "m3"):
        _register(engine, version)
    assert [row["version"] for row in registry.versions(engine)] == ["m3", "m2", "m1"]


def test_current_actor(monkeypatch):
    monkeypatch.setattr(registry.getpass, "getuser", lambda: "erin")
    assert registry.current_actor() == "erin"

    def no_user():
        raise KeyError("uid not found")

    monkeypatch.setattr(registry.getpass, "getuser", no_user)
    monkeypatch.setenv("USER", "frank")
    assert registry.current_actor() == "frank"
    monkeypatch.delenv("USER")
    monkeypatch.setenv("LOGNAME", "grace")
    assert registry.current_actor() == "grace"
    monkeypatch.delenv("LOGNAME")
    assert registry.current_actor() == "unknown"


def test_processes_promoting_together_leave_one_production_model(database_url):
    engine = database.connect(database_url)
    versions = [f"m{index}" for index in range(4)]
    for version in versions:
        _register(engine, version)
    script = (
        "import sys; from pipeline.store import database, registry; "
        "engine = database.connect(sys.argv[1]); "
        "registry.promote(engine, sys.argv[2], actor='worker', reason='race')"
    )
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", script, database_url, version], cwd=REPO_ROOT, stderr=subprocess.PIPE, text=True
        )
        for version in versions
    ]
    errors = [worker.communicate(timeout=120)[1] for worker in workers]

    assert [worker.returncode for worker in workers] == [0, 0, 0, 0], errors
    stages = _stages(engine)
    assert sorted(stages.values()) == ["archived", "archived", "archived", "production"]
    names = [event for _, event in _event_names(engine)]
    assert names.count("promote") == 4
    assert names.count("archive") == 3
