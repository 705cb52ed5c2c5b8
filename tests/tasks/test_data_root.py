"""The data root as the database records it: an absolute path, whatever the working directory."""

from __future__ import annotations

from tasks.config import layout


def test_a_relative_data_root_becomes_the_absolute_path_every_record_names(configure, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    configure(overnight={"data_root": "relative-data"})
    assert layout().root == tmp_path / "relative-data" and layout().root.is_dir()
    # What runs.output_path and the registry store: another host or folder finds the same place.
    output = layout().output("training", "0123abcd")
    assert output.is_absolute() and output.parent.parent == tmp_path / "relative-data"
