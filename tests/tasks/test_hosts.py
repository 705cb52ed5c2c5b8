"""Two hosts as one, on one machine: network namespaces with host names of their own, one luigid
and one PostgreSQL reachable from both, the data folder shared by path (tests/tasks/hosts.py)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from luigi.execution_summary import LuigiStatusCode

from pipeline.store import database
from tasks import RegisterModel
from tests.tasks.hosts import Forwarder, Network, why_namespaces_cannot_be_made
from tests.tasks.luigid import Luigid, api, quick_to_take_over
from tests.tasks.support import build, subprocess_env

pytestmark = [pytest.mark.slow, pytest.mark.skipif(bool(why_namespaces_cannot_be_made()), reason="no namespaces")]
REPO_ROOT = Path(__file__).resolve().parents[2]
LUIGI = str(Path(sys.executable).with_name("luigi"))
TRIALS = 4


@pytest.fixture
def network(tmp_path):
    try:
        made = Network(2, tmp_path / "hosts")
    except subprocess.CalledProcessError as error:  # a container without CAP_NET_ADMIN, say
        pytest.skip(f"network namespaces cannot be made here: {' '.join(error.cmd)}: {error.stderr.strip()}")
    yield made
    made.close()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_two_hosts_share_a_tuning_and_a_second_data_set_runs_beside_it(
    configure, digits_folder, tmp_path, database_url, network
):
    from sklearn.datasets import load_wine

    wine = tmp_path / "wine" / "wine.csv"  # the second data set: scikit-learn's wines
    wine.parent.mkdir()
    load_wine(as_frame=True).frame.to_csv(wine, index=False)
    luigid = Luigid(tmp_path / "scheduler", address=network.gateway)
    luigid.start()
    postgres = Forwarder(network.gateway, ("127.0.0.1", 5432))
    try:
        url = sa.engine.make_url(database_url)
        assert (url.host, url.port or 5432) == ("127.0.0.1", 5432), "the forwarder reaches this server only"
        seen_from_hosts = url.set(host=network.gateway, port=postgres.port).render_as_string(hide_password=False)
        tuning = configure(
            dataset={"path": str(digits_folder)},
            TrainModel={"epochs": "1", "architecture": "cnn"},
            TuneModel={"space": "learning_rate: 0.001, 0.003; batch_size: 32, 64"},
        ).rename(tmp_path / "tuning.cfg")
        second_root = tmp_path / "second"
        second = configure(
            overnight={"data_root": str(second_root), "database_url": f"sqlite:///{second_root / 'overnight.db'}"},
            dataset={"path": str(wine), "label": "target"},
        ).rename(tmp_path / "second.cfg")

        def on(host, config, task, database=None):
            env = host.environment(subprocess_env(config))
            if database:
                env["OVERNIGHT_DATABASE_URL"] = database
            command = [LUIGI, "--module", "tasks", task, "--scheduler-host", network.gateway]
            command += ["--scheduler-port", str(luigid.port), "--lock-pid-dir", str(host.private / "luigi")]
            return subprocess.Popen(host.command(*command), cwd=REPO_ROOT, env=env, stderr=subprocess.PIPE, text=True)

        # Both hosts' cron start the same tuning at once on a fresh data folder; the second data
        # set's validation starts on the first host meanwhile.
        host_1, host_2 = network.hosts
        workers = [on(host_1, tuning, "TuneModel", seen_from_hosts), on(host_2, tuning, "TuneModel", seen_from_hosts)]
        workers.append(on(host_1, second, "ValidateData"))
        for worker in workers:
            _, stderr = worker.communicate(timeout=300)
            assert worker.returncode == 0, stderr[-4000:]  # every worker: the graph it asked for is complete
        done = api(luigid.port, "task_list", address=network.gateway, status="DONE", upstream_status="", search="")
    finally:
        postgres.close()
        luigid.stop()

    with database.connect(database_url).connect() as connection:
        trained = connection.execute(sa.text("SELECT version, status, host FROM runs WHERE task = 'TrainModel'")).all()
        ingested = connection.execute(sa.text("SELECT host FROM runs WHERE task = 'IngestData'")).all()
    assert len(trained) == TRIALS and len({version for version, _, _ in trained}) == TRIALS  # each trial once
    assert {status for _, status, _ in trained} == {"succeeded"}
    assert {host for _, _, host in trained} == {"host-1", "host-2"}, trained  # both hosts took trials
    assert len(ingested) == 1
    families = [task["name"] for task in done.values()]
    assert families.count("TuneTrial") == TRIALS and families.count("ValidateData") == 2
    assert list((second_root / "02_validation").iterdir())


SHARDS = 4
SHARED_NIGHT, KILLED_NIGHT = "2031-06-01", "2031-06-02"


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_two_hosts_share_a_sharded_night_and_one_finishes_a_night_whose_other_host_died(
    configure, tabular_csv, tmp_path, database_url, network
):
    # A lease of 3 s: a heartbeat every second, a host silent for 3 s is taken as dead.
    config = configure(
        database_url=database_url,
        dataset={"path": str(tabular_csv)},
        overnight={"run_lease_s": "3"},
        BatchPredict={"shards": str(SHARDS)},
    )
    assert build(RegisterModel()).status == LuigiStatusCode.SUCCESS  # the production model, made here
    rows = pd.read_csv(tabular_csv).drop(columns=["label"])
    for night in (SHARED_NIGHT, KILLED_NIGHT):
        folder = tmp_path / "data" / "incoming" / night
        folder.mkdir(parents=True)
        size = len(rows) // SHARDS
        for shard in range(SHARDS):
            rows.iloc[shard * size : (shard + 1) * size].to_csv(folder / f"part-{shard}.csv", index=False)
    luigid = quick_to_take_over(tmp_path / "scheduler", tmp_path / "fast-prune", address=network.gateway)
    luigid.start()
    postgres = Forwarder(network.gateway, ("127.0.0.1", 5432))
    try:
        url = sa.engine.make_url(database_url)
        seen_from_hosts = url.set(host=network.gateway, port=postgres.port).render_as_string(hide_password=False)
        host_1, host_2 = network.hosts

        def nightly(host, night, **env):
            environment = host.environment(subprocess_env(config)) | {"OVERNIGHT_DATABASE_URL": seen_from_hosts}
            command = [LUIGI, "--module", "tasks", "Nightly", "--date", night, "--scheduler-host", network.gateway]
            command += ["--scheduler-port", str(luigid.port), "--lock-pid-dir", str(host.private / "luigi")]
            return subprocess.Popen(
                host.command(*command), cwd=REPO_ROOT, env=environment | env, stderr=subprocess.PIPE, text=True
            )

        # Both hosts' cron start the night at once; a shard lasts 4 s more, so neither takes them all.
        slow = {"OVERNIGHT_TEST_PAUSE_AT": "night:shard-scored", "OVERNIGHT_TEST_PAUSE_SECONDS": "4"}
        both = [nightly(host_1, SHARED_NIGHT, **slow), nightly(host_2, SHARED_NIGHT, **slow)]
        for worker in both:
            _, stderr = worker.communicate(timeout=300)
            assert worker.returncode == 0, stderr[-4000:]  # each: the night it asked for is complete

        # The next night: host-1 dies with shard 0 scored and not yet in place; host-2 finishes.
        held = {"OVERNIGHT_TEST_PAUSE_AT": "night:shard-scored:0", "OVERNIGHT_TEST_PAUSE_SECONDS": "300"}
        doomed = nightly(host_1, KILLED_NIGHT, **held)
        for line in doomed.stderr:
            if "overnight-test-pause:" in line:
                break
        started = time.monotonic()
        waiting = nightly(host_2, KILLED_NIGHT)
        time.sleep(5)  # host-2 has asked for work, taken the other shards and waits for shard 0
        doomed.kill()  # the host goes down: its process dies, its flock with it, its heartbeat stops
        doomed.wait()
        _, stderr = waiting.communicate(timeout=240)
        finished_s = time.monotonic() - started
    finally:
        postgres.close()
        luigid.stop()
    assert waiting.returncode == 0, stderr[-4000:]
    print(f"host-2 finished the night host-1 died in after {finished_s:.0f} s")

    shards = query(database_url, "SELECT params, host, status, error FROM runs WHERE task = 'ScoreShard'")
    for night in (SHARED_NIGHT, KILLED_NIGHT):
        runs = [run for run in shards if json_params(run)["date"] == night]
        succeeded = sorted(json_params(run)["shard"] for run in runs if run["status"] == "succeeded")
        assert succeeded == [str(shard) for shard in range(SHARDS)], runs  # every shard once
        logged = query(
            database_url,
            "SELECT COUNT(DISTINCT example_id) AS n, COUNT(*) AS m FROM predictions WHERE batch_date = :d",
            d=night,
        )
        assert logged == [{"n": len(rows), "m": len(rows)}]  # no row lost or doubled
    shared = [run["host"] for run in shards if json_params(run)["date"] == SHARED_NIGHT]
    assert set(shared) == {"host-1", "host-2"}, shared  # both hosts scored shards
    (dead,) = [run for run in shards if run["status"] != "succeeded"]
    assert (json_params(dead)["date"], dead["host"], dead["status"]) == (KILLED_NIGHT, "host-1", "abandoned")
    assert "on host-1 last said it was alive" in dead["error"]  # settled by host-2, which cannot judge host-1's pid
    nights = query(database_url, "SELECT host, status FROM runs WHERE task = 'Nightly' AND status = 'succeeded'")
    assert len(nights) == 2


def query(url: str, text: str, **params) -> list[dict]:
    with database.connect(url).connect() as connection:
        return [dict(row._mapping) for row in connection.execute(sa.text(text), params)]


def json_params(run: dict) -> dict:
    return run["params"] if isinstance(run["params"], dict) else json.loads(run["params"])
