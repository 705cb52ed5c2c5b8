"""Cards per host: each card held by one task at a time, whatever the scheduler grants."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

import pytest

from pipeline.common import cards

HOLD_S = 1.5


@pytest.fixture(autouse=True)
def _no_tensorflow_cards_yet(monkeypatch):
    # A process whose TensorFlow started on some cards keeps them for every later task; a test
    # process where another test imported TensorFlow must not inherit that.
    monkeypatch.setattr(cards, "_tensorflow_cards", None)


def test_a_task_holds_its_own_card_and_cuda_visible_devices_names_it(tmp_path, monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    with cards.holding_cards(1, ["0", "1"], tmp_path) as first:
        assert os.environ["CUDA_VISIBLE_DEVICES"] == ",".join(first) == "0"
        with cards.holding_cards(1, ["0", "1"], tmp_path) as second:  # another task of this host
            assert second == ("1",) and os.environ["CUDA_VISIBLE_DEVICES"] == "1"
    assert "CUDA_VISIBLE_DEVICES" not in os.environ  # restored for the process's next task


def test_cuda_visible_devices_says_which_cards_the_host_lets_tasks_use(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,1,-1,2")
    assert cards.host_cards(4) == ["3", "1"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert cards.host_cards(4) == []
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    assert cards.host_cards(2) == ["0", "1"]


def test_a_task_that_needs_two_cards_waits_holding_none(tmp_path, monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setattr(cards, "POLL_S", 0.05)
    waited, got = [], []
    with cards.holding_cards(1, ["0", "1"], tmp_path):
        training = threading.Thread(target=lambda: _hold(2, tmp_path, waited, got))
        training.start()
        time.sleep(0.5)
        assert waited and not got  # it says why it waits...
        with cards.holding_cards(1, ["0", "1"], tmp_path) as meanwhile:
            assert meanwhile == ("1",)  # ...and holds no card meanwhile
    training.join(timeout=10)
    assert got == [("0", "1")]


def _hold(count, folder, waited, got):
    with cards.holding_cards(count, ["0", "1"], folder, waiting=waited.append) as chosen:
        got.append(chosen)


HOLDER = """
import json, sys, time
from pipeline.common import cards
cards.POLL_S = 0.05
with cards.holding_cards(1, cards.host_cards(int(sys.argv[1])), cards.lock_folder()) as chosen:
    start = time.time()
    time.sleep(float(sys.argv[2]))
    print(json.dumps({"card": chosen[0], "start": start, "end": time.time()}))
"""


def test_two_hosts_of_different_card_counts_use_each_card_once(tmp_path):
    # Each host its own temporary folder (as /tmp is per machine); three tasks on a host of two
    # cards, two on a host of one, all started at once.
    hosts = {"two-cards": 2, "one-card": 1}
    starts = {"two-cards": 3, "one-card": 2}
    processes = []
    for host, count in hosts.items():
        (tmp_path / host).mkdir()
        env = {**os.environ, "TMPDIR": str(tmp_path / host)}
        env.pop("CUDA_VISIBLE_DEVICES", None)
        for _ in range(starts[host]):
            command = [sys.executable, "-c", HOLDER, str(count), str(HOLD_S)]
            processes.append((host, subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)))
    held: dict[str, list[dict]] = {host: [] for host in hosts}
    for host, process in processes:
        out, _ = process.communicate(timeout=60)
        assert process.returncode == 0
        held[host].append(json.loads(out))
    for host, count in hosts.items():
        assert {use["card"] for use in held[host]} <= {str(card) for card in range(count)}
        for use in held[host]:
            running = [other for other in held[host] if other["start"] <= use["start"] < other["end"]]
            assert len(running) <= count, (host, held[host])  # never more tasks than cards at once
            assert len({other["card"] for other in running}) == len(running)  # each on its own card
        assert len(held[host]) == starts[host]  # the others waited, then ran
    # Card 0 of one host and card 0 of the other were in use at the same time: locks are per host.
    assert any(_overlap(a, b) for a in held["two-cards"] for b in held["one-card"] if a["card"] == b["card"])


def _overlap(a: dict, b: dict) -> bool:
    return a["start"] < b["end"] and b["start"] < a["end"]


def test_the_lock_folder_is_the_host_s_temporary_folder_shared_by_its_users(tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(cards.tempfile, "tempdir", None)
    folder = cards.lock_folder()
    assert folder == tmp_path / "overnight-cards" and folder.stat().st_mode & 0o7777 == 0o1777


def test_a_process_whose_tensorflow_started_keeps_its_cards_for_its_later_tasks(tmp_path, monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setitem(sys.modules, "tensorflow", sys.modules.get("tensorflow", object()))
    with cards.holding_cards(1, ["0", "1"], tmp_path) as first:
        assert first == ("0",)  # TensorFlow (loaded in this process) now sees card 0 only
    with cards.holding_cards(2, ["0", "1"], tmp_path) as later:
        assert later == ("0",)  # a later training of this process: the card TensorFlow has


def test_tasks_per_card_lets_that_many_tasks_share_a_card(tmp_path, monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setattr(cards, "POLL_S", 0.05)
    with (
        cards.holding_cards(1, ["0"], tmp_path, slots=2) as first,
        cards.holding_cards(1, ["0"], tmp_path, slots=2) as second,
    ):
        assert first == second == ("0",)
        waited = []
        third = threading.Thread(target=lambda: _hold_one(tmp_path, waited))
        third.start()
        time.sleep(0.3)
        assert waited  # a third task waits for a slot
    third.join(timeout=10)
    assert not third.is_alive()


def _hold_one(folder, waited):
    with cards.holding_cards(1, ["0"], folder, waiting=waited.append, slots=2):
        pass
