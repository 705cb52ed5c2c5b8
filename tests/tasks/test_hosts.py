"""Two hosts as one, on one machine: network namespaces with host names of their own, one luigid
and one PostgreSQL reachable from both, the data folder shared by path (tests/tasks/hosts.py)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from pipeline.store import database
from tests.tasks.hosts import Forwarder, Network, why_namespaces_cannot_be_made
from tests.tasks.luigid import Luigid, api, quick_to_take_over
from tests.tasks.support import subprocess_env

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


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_dead_host_s_task_is_taken_over_and_its_run_settled_by_the_other_host(
    configure, tabular_csv, tmp_path, database_url, network
):
    luigid = quick_to_take_over(tmp_path / "scheduler", tmp_path / "fast-prune", address=network.gateway)
    luigid.start()
    postgres = Forwarder(network.gateway, ("127.0.0.1", 5432))
    try:
        url = sa.engine.make_url(database_url)
        seen_from_hosts = url.set(host=network.gateway, port=postgres.port).render_as_string(hide_password=False)
        # A lease of 3 s: a heartbeat every second, a host silent for 3 s is taken as dead.
        config = configure(dataset={"path": str(tabular_csv)}, overnight={"run_lease_s": "3"})
        host_1, host_2 = network.hosts

        def on(host, **env):
            environment = host.environment(subprocess_env(config)) | {"OVERNIGHT_DATABASE_URL": seen_from_hosts}
            command = [LUIGI, "--module", "tasks", "ValidateData", "--scheduler-host", network.gateway]
            command += ["--scheduler-port", str(luigid.port), "--lock-pid-dir", str(host.private / "luigi")]
            return subprocess.Popen(
                host.command(*command), cwd=REPO_ROOT, env=environment | env, stderr=subprocess.PIPE, text=True
            )

        held = {"OVERNIGHT_TEST_PAUSE_AT": "stage:before-rename:IngestData", "OVERNIGHT_TEST_PAUSE_SECONDS": "300"}
        doomed = on(host_1, **held)
        for line in doomed.stderr:
            if "overnight-test-pause:" in line:
                break
        waiting = on(host_2)
        time.sleep(5)  # host-2 has asked for work and waits for host-1's IngestData
        doomed.kill()  # the host goes down: its process dies, its flock with it, its heartbeat stops
        doomed.wait()
        _, stderr = waiting.communicate(timeout=120)
    finally:
        postgres.close()
        luigid.stop()
    assert waiting.returncode == 0, stderr[-4000:]
    with database.connect(database_url).connect() as connection:
        ingested = connection.execute(sa.text("SELECT host, status, error FROM runs WHERE task = 'IngestData'")).all()
    assert sorted((host, status) for host, status, _ in ingested) == [("host-1", "abandoned"), ("host-2", "succeeded")]
    (error,) = [error for host, _, error in ingested if host == "host-1"]
    assert "on host-1 last said it was alive" in error  # settled by host-2, which cannot judge host-1's pid
