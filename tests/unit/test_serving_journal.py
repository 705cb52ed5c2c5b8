"""The server's journal: what append returned is on disk, segments load once, a killed server's
segments are adopted by the next one, and a line cut short by a kill is skipped."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

from pipeline.serving.journal import Journal, read


def _records(start: int, count: int) -> list[dict]:
    return [{"example_id": f"e{n}", "prediction": "cat"} for n in range(start, start + count)]


def test_appended_rows_load_after_a_rotation_and_once(tmp_path):
    journal = Journal(tmp_path / "journal")
    journal.append(_records(0, 3))
    journal.append(_records(3, 2))
    assert journal.ready() == []  # still being written
    assert journal.backlog() == 5
    journal.rotate()
    (segment,) = journal.ready()
    claimed = journal.claim(segment)
    assert claimed is not None and journal.claim(segment) is None  # one loader per segment
    assert [record["example_id"] for record in read(claimed)] == [f"e{n}" for n in range(5)]
    journal.done(claimed)
    assert journal.ready() == [] and journal.backlog() == 0
    journal.rotate()  # nothing written since: no empty segment
    assert journal.ready() == []
    journal.close()


def test_a_released_segment_loads_later_in_order(tmp_path):
    journal = Journal(tmp_path)
    for start in (0, 10, 20):
        journal.append(_records(start, 1))
        journal.rotate()
    first, *rest = journal.ready()
    claimed = journal.claim(first)
    journal.release(claimed)  # the database was down
    assert [read(segment)[0]["example_id"] for segment in journal.ready()] == ["e0", "e10", "e20"]
    journal.close()


def test_a_killed_writer_s_segments_are_adopted_and_a_cut_line_skipped(tmp_path):
    folder = tmp_path / "journal"
    script = textwrap.dedent(
        f"""
        import os, signal
        from pipeline.serving.journal import Journal
        journal = Journal({str(folder)!r})
        journal.append([{{"example_id": "a"}}, {{"example_id": "b"}}])
        journal.rotate()
        journal.append([{{"example_id": "c"}}])
        with open(journal._active, "ab") as handle:  # a write the kill cut short: never acknowledged
            handle.write(b'{{"example_id": "d"')
        print("written", flush=True)
        signal.pause()
        """
    )
    writer = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=os.getcwd())
    assert writer.stdout.readline().strip() == "written"
    survivor = Journal(folder)
    assert len(survivor.ready()) == 1  # the writer lives: its active segment is its own
    writer.send_signal(signal.SIGKILL)
    writer.wait()

    ids = []
    for segment in survivor.ready():
        claimed = survivor.claim(segment)
        ids += [record["example_id"] for record in read(claimed)]
        survivor.done(claimed)
    assert ids == ["a", "b", "c"]
    assert not list(folder.glob("owner-*")) or [p.name for p in folder.glob("owner-*")] == [
        f"owner-{survivor.owner}.lock"
    ]
    survivor.close()
    assert list(folder.iterdir()) == []
