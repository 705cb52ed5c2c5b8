"""GPU tasks hold the Luigi resource `gpu` on a GPU machine, and nothing on a CPU machine."""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys

from pipeline.common import environment
from tasks import BatchPredict, SplitData, TrainModel
from tasks.tuning import TuneTrial


def _cards(monkeypatch, count: int) -> None:
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setattr(environment, "_hardware", lambda: {"gpus": ["NVIDIA H100 (81559 MiB)"] * count})


def test_gpu_tasks_declare_the_gpu_resource_only_when_a_gpu_is_listed(monkeypatch, configure):
    configure()
    night = datetime.date(2030, 1, 1)
    _cards(monkeypatch, 0)
    assert TrainModel().resources == {} and BatchPredict(date=night, model_version="m").resources == {}
    assert TuneTrial(params_json="{}").resources == {}
    _cards(monkeypatch, 1)
    assert TrainModel().resources == {"gpu": 1}
    assert BatchPredict(date=night, model_version="m").resources == {"gpu": 1}
    assert TuneTrial(params_json="{}").resources == {"gpu": 1}
    assert SplitData().resources == {}


def test_a_training_holds_every_card_it_mirrors_over_and_scoring_one(monkeypatch, configure):
    configure()
    night = datetime.date(2030, 1, 1)
    _cards(monkeypatch, 4)
    assert TrainModel().resources == {"gpu": 4} and TuneTrial(params_json="{}").resources == {"gpu": 4}
    assert BatchPredict(date=night, model_version="m").resources == {"gpu": 1}
    # Never more than [resources] gpu offers, or the scheduler could never run it.
    configure(resources={"gpu": "2"})
    assert TrainModel().resources == {"gpu": 2}


FAKE_NVIDIA_SMI = """#!/bin/sh
# Two cards, as `nvidia-smi --query-gpu=name,memory.total --format=csv,noheader` lists them.
echo "NVIDIA H100 80GB HBM3, 81559 MiB"
echo "NVIDIA H100 80GB HBM3, 81559 MiB"
"""


def _offered_gpus(tmp_path, config: str, create_task: bool = True, **env) -> dict:
    """A fresh process with two listed cards creates its first task (as the luigi command does before
    it builds its scheduler): the resources Luigi will schedule with."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "nvidia-smi").write_text(FAKE_NVIDIA_SMI)
    (bin_dir / "nvidia-smi").chmod(0o755)
    (tmp_path / "gpu.cfg").write_text(config)
    environ = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "LUIGI_CONFIG_PATH": str(tmp_path / "gpu.cfg"),
        **env,
    }
    first_task = "tasks.SplitData(); " if create_task else ""
    code = (
        f"import json, sys, luigi, tasks; {first_task}"
        "print(json.dumps([luigi.configuration.get_config().getintdict('resources'), 'tensorflow' in sys.modules]))"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code], env=environ, capture_output=True, text=True, timeout=120, check=True
    )
    resources, tensorflow_imported = json.loads(completed.stdout.splitlines()[-1])
    assert not tensorflow_imported  # nvidia-smi was asked, not CUDA: Luigi may still fork workers
    return resources


def test_the_cards_found_at_start_are_offered_as_the_gpu_resource(tmp_path):
    assert _offered_gpus(tmp_path, "[core]\nlocal_scheduler = true\n") == {"gpu": 2}


def test_import_tasks_only_defines_classes(tmp_path):
    # No nvidia-smi and no change to Luigi's configuration until a task is created.
    assert _offered_gpus(tmp_path, "[core]\nlocal_scheduler = true\n", create_task=False) == {}


def test_cuda_visible_devices_narrows_the_offer(tmp_path):
    assert _offered_gpus(tmp_path, "", CUDA_VISIBLE_DEVICES="1") == {"gpu": 1}
    assert _offered_gpus(tmp_path, "", CUDA_VISIBLE_DEVICES="-1") == {}


def test_a_configured_gpu_resource_wins_over_detection(tmp_path):
    assert _offered_gpus(tmp_path, "[resources]\ngpu = 5\n") == {"gpu": 5}


def test_usable_gpu_count_follows_cuda_visible_devices(monkeypatch):
    monkeypatch.setattr(environment, "_hardware", lambda: {"gpus": ["A (1 MiB)", "B (1 MiB)", "C (1 MiB)"]})
    cases = {None: 3, "0,2": 2, "": 0, "-1": 0, "1,-1,2": 1, "0,1,2,3": 3}
    for visible, expected in cases.items():
        if visible is None:
            monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
        else:
            monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
        assert environment.usable_gpu_count() == expected, visible


def test_a_host_runs_no_more_gpu_tasks_than_its_cards_whatever_the_scheduler_grants(tmp_path, configure):
    from pathlib import Path

    import sqlalchemy as sa

    from pipeline.store import database
    from tests.tasks.support import subprocess_env

    # The scheduler's gpu resource is the cluster's total (here 3) on a host of two cards.
    config = configure(resources={"gpu": "3"})
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "nvidia-smi").write_text(FAKE_NVIDIA_SMI)
    (bin_dir / "nvidia-smi").chmod(0o755)
    (tmp_path / "host-tmp").mkdir()  # the host's own temporary folder, where its card locks live
    repo = Path(__file__).resolve().parents[2]
    env = subprocess_env(config) | {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "TMPDIR": str(tmp_path / "host-tmp"),
        "PYTHONPATH": str(repo),
    }
    env.pop("CUDA_VISIBLE_DEVICES", None)
    luigi = str(Path(sys.executable).with_name("luigi"))
    command = [luigi, "--module", "tests.tasks.stand_in_tasks", "HoldCards", "--count", "3", "--workers", "3"]
    done = subprocess.run(command, cwd=repo, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]

    with database.connect(f"sqlite:///{tmp_path / 'data' / 'overnight.db'}").connect() as connection:
        runs = connection.execute(sa.text("SELECT hardware, started_at, finished_at FROM runs")).all()
    held = [(json.loads(hardware)["cards"], started, finished) for hardware, started, finished in runs]
    assert len(held) == 3 and all(len(cards) == 1 and cards[0] in ("0", "1") for cards, _, _ in held), held
    for _, started, _ in held:
        running = [cards[0] for cards, other_start, other_end in held if other_start <= started < other_end]
        assert len(running) <= 2 and len(set(running)) == len(running), held  # one task per card at a time
    assert "waiting for 1 free card(s) of 0, 1 on this host" in done.stderr
    outputs = [json.loads((tmp_path / "data" / "held" / f"{n}.json").read_text()) for n in range(3)]
    assert sorted(o["cuda_visible_devices"] for o in outputs) in (["0", "0", "1"], ["0", "1", "1"])
