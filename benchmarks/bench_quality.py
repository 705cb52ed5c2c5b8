"""Model quality: the default `auto` model against each baseline, on data installed packages ship.

Each data set is written as a user would export it, then `EvaluateModel` runs on it as
`luigi --module tasks EvaluateModel` does, with the defaults of luigi.cfg; the figures are the
test headlines of metrics.json (the model's and each baseline's, on the same test rows). A figure
is the model's headline minus the best baseline's: at least -0.01 accuracy, or -0.02 r2.

Data: scikit-learn's diabetes (regression), breast cancer and wine (tabular classification),
digits (the 8 x 8 images as an image folder), and Debian's package descriptions -> section
(text), read from apt's package lists where the machine has them, else dpkg's status file.

python -m benchmarks.bench_quality NAME FOLDER   # one data set, in a child process; prints JSON
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.common import Result, run_child, scratch_folder

DATA_SETS = ("diabetes", "breast_cancer", "wine", "digits", "debian")
TEXT_ROWS, TEXT_SECTIONS = 8_000, 8  # the text set: this many packages of the most common sections
APT_LISTS = Path("/var/lib/apt/lists")
DPKG_STATUS = Path("/var/lib/dpkg/status")
TOLERANCE = {"accuracy": 0.01, "r2": 0.02}  # how far below the best baseline the model may be


def _tabular(folder: Path, loader, task: str) -> dict:
    frame = loader(as_frame=True).frame.rename(columns={"target": "label"})
    if task == "classification":
        frame["label"] = frame["label"].map(lambda value: f"class_{value}")
    path = folder / "raw" / "table.csv"
    path.parent.mkdir(parents=True)
    frame.to_csv(path, index=False)
    return {"path": path, "label": "label", "task": task}


def _digits(folder: Path) -> dict:
    from pipeline.examples import write_examples

    write_examples(folder / "data", nights=1, per_night=1)  # one digit held back for a night
    return {"path": folder / "data" / "raw" / "digits", "label": "label", "task": "classification"}


def _package_stanzas() -> str:
    lists = sorted(APT_LISTS.glob("*_main_binary-*_Packages*")) if APT_LISTS.is_dir() else []
    for listed in lists:
        read = subprocess.run(["/usr/lib/apt/apt-helper", "cat-file", str(listed)], capture_output=True, text=True)
        if read.returncode == 0 and read.stdout.count("\nPackage: ") > TEXT_ROWS:
            return read.stdout
    return DPKG_STATUS.read_text(encoding="utf-8", errors="replace")


def _debian(folder: Path) -> dict:
    rows = []
    for stanza in _package_stanzas().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in stanza.splitlines() if ": " in line and not line.startswith(" "))
        if "Description" in fields and "Section" in fields:
            rows.append({"description": fields["Description"], "section": fields["Section"].split("/")[-1]})
    table = pd.DataFrame(rows).drop_duplicates("description")
    common = table["section"].value_counts().index[:TEXT_SECTIONS]
    table = table[table["section"].isin(common)]
    table = table.sample(min(TEXT_ROWS, len(table)), random_state=0)
    path = folder / "raw" / "packages.csv"
    path.parent.mkdir(parents=True)
    table.to_csv(path, index=False)
    return {"path": path, "label": "section", "task": "classification", "kinds": "description:text"}


def _write(name: str, folder: Path) -> dict:
    from sklearn import datasets

    if name == "diabetes":
        return _tabular(folder, lambda **kw: datasets.load_diabetes(scaled=False, **kw), "regression")
    if name == "breast_cancer":
        return _tabular(folder, datasets.load_breast_cancer, "classification")
    if name == "wine":
        return _tabular(folder, datasets.load_wine, "classification")
    if name == "digits":
        return _digits(folder)
    return _debian(folder)


def measure(name: str, folder: Path) -> dict:
    import luigi

    from tasks import EvaluateModel

    logging.basicConfig(level=logging.WARNING)
    dataset = _write(name, folder)
    config = folder / "quality.cfg"
    options = "".join(f"{key} = {value}\n" for key, value in dataset.items())
    config.write_text(
        f"[overnight]\ndata_root = {folder / 'data'}\ndatabase_url = sqlite:///{folder / 'data' / 'overnight.db'}\n"
        f"[dataset]\n{options}"
    )
    luigi.configuration.add_config_path(str(config))
    if not luigi.build([EvaluateModel()], local_scheduler=True, log_level="WARNING"):
        raise RuntimeError(f"EvaluateModel failed on {name}")
    metrics = json.loads((Path(EvaluateModel().output().path) / "metrics.json").read_text())
    return {
        "task": metrics["task"],
        "rows": metrics["splits"]["test"]["rows"],
        "headline": metrics["headline"]["value"],
        "baselines": {baseline: found["headline"] for baseline, found in metrics["baselines"].items()},
        "diagnosis": metrics["diagnosis"]["diagnosis"],
    }


def results(names: tuple[str, ...] = DATA_SETS) -> list[Result]:
    found = []
    for name in names:
        measured = run_child("benchmarks.bench_quality", name, str(scratch_folder(f"bench-quality-{name}-")))
        metric = "accuracy" if measured["task"] == "classification" else "r2"
        best = max(measured["baselines"], key=measured["baselines"].get)
        others = ", ".join(f"{baseline} {value:.3f}" for baseline, value in measured["baselines"].items())
        found.append(
            Result(
                f"quality {name}: auto - best baseline ({metric})",
                measured["headline"] - measured["baselines"][best],
                None,
                metric,
                f">= {-TOLERANCE[metric]}",
                f"auto {measured['headline']:.3f} ({measured['diagnosis']}) vs {others}; {measured['rows']} test rows",
            )
        )
    return found


if __name__ == "__main__":
    np.seterr(all="ignore")
    print(json.dumps(measure(sys.argv[1], Path(sys.argv[2]))))
