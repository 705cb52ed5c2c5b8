"""Model quality: the default `auto` model against each baseline, on data installed packages ship.

Each data set is written as a user would export it, then `EvaluateModel` runs on it as
`luigi --module tasks EvaluateModel` does, with the defaults of luigi.cfg; the figures are the
test headlines of metrics.json (the model's and each baseline's, on the same test rows). A figure
is the model's headline minus the best baseline's: at least -0.01 accuracy (roc_auc where one
class holds 70% of the training labels, as in recommends), or -0.02 r2.

Data: scikit-learn's diabetes (regression), breast cancer and wine (tabular classification),
digits (the 8 x 8 images as an image folder); two text sets: Debian's package descriptions ->
section, and the first paragraph of the docstrings of installed libraries -> the library; two
mixed tables of Debian packages (a high-cardinality maintainer, missing values): whether a
package recommends others (about 16% yes) and its installed size (log2 KiB, with its
description as text). Debian's packages are read from apt's package lists where the machine has
them, else dpkg's status file.

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

DATA_SETS = ("diabetes", "breast_cancer", "wine", "digits", "debian", "docstrings", "recommends", "package_size")
TEXT_ROWS, TEXT_SECTIONS = 8_000, 8  # the text set: this many packages of the most common sections
TABLE_ROWS = 10_000  # the package tables: this many packages, a seeded sample
# Where each library's docstrings are read: modules, or classes whose methods are documented.
DOCUMENTED = {
    "numpy": ("numpy", "numpy.linalg", "numpy.random", "numpy.fft", "numpy.ma"),
    "pandas": ("pandas", "pandas.DataFrame", "pandas.Series"),
    "scipy": tuple(f"scipy.{name}" for name in ("stats", "signal", "linalg", "optimize", "special", "interpolate")),
    "sklearn": tuple(
        f"sklearn.{name}" for name in ("linear_model", "ensemble", "preprocessing", "metrics", "model_selection")
    ),
    "matplotlib": ("matplotlib.pyplot", "matplotlib.axes.Axes"),
    "keras": ("keras.layers", "keras.ops", "keras.losses", "keras.optimizers", "keras.callbacks"),
}
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


def _packages() -> pd.DataFrame:
    """One row per package stanza, one column per field (missing where a stanza lacks it)."""
    rows = []
    for stanza in _package_stanzas().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in stanza.splitlines() if ": " in line and not line.startswith(" "))
        if "Description" in fields and "Section" in fields:
            rows.append(fields)
    return pd.DataFrame(rows)


def _debian(folder: Path) -> dict:
    packages = _packages()
    table = pd.DataFrame(
        {"description": packages["Description"], "section": packages["Section"].str.split("/").str[-1]}
    ).drop_duplicates("description")
    common = table["section"].value_counts().index[:TEXT_SECTIONS]
    table = table[table["section"].isin(common)]
    table = table.sample(min(TEXT_ROWS, len(table)), random_state=0)
    path = folder / "raw" / "packages.csv"
    path.parent.mkdir(parents=True)
    table.to_csv(path, index=False)
    return {"path": path, "label": "section", "task": "classification", "kinds": "description:text"}


def _docstrings(folder: Path) -> dict:
    """The first paragraph of each public function's or class's docstring -> its library."""
    import importlib
    import inspect

    rows = {}
    for library, places in DOCUMENTED.items():
        for place in places:
            module, _, member = place.rpartition(".")
            try:
                found = importlib.import_module(place)
            except ImportError:
                found = getattr(importlib.import_module(module), member)
            for name in dir(found):
                documented = None if name.startswith("_") else inspect.getdoc(getattr(found, name, None))
                first = " ".join(documented.split("\n\n")[0].split()) if documented else ""
                if len(first) > 10:
                    rows.setdefault(first, library)  # a paragraph two libraries share: the first one's
    table = pd.DataFrame({"docstring": list(rows), "library": list(rows.values())})
    path = folder / "raw" / "docstrings.csv"
    path.parent.mkdir(parents=True)
    table.to_csv(path, index=False)
    return {"path": path, "label": "library", "task": "classification", "kinds": "docstring:text"}


def _package_table() -> pd.DataFrame:
    """Debian packages as an export of their fields would have them: counts of relations,
    missing where a field is absent, a maintainer among thousands."""
    packages = _packages().sample(TABLE_ROWS, random_state=0)
    relations = {
        field.lower().replace("-", "_"): packages[field].str.count(",") + 1
        for field in ("Depends", "Suggests", "Provides", "Conflicts")
        if field in packages
    }
    return pd.DataFrame(
        {
            "section": packages["Section"].str.split("/").str[-1],
            "maintainer": packages["Maintainer"].str.replace(r"\s*<.*>", "", regex=True),
            "architecture": packages["Architecture"],
            "multi_arch": packages.get("Multi-Arch"),
            "homepage_host": packages.get("Homepage", pd.Series(dtype=str)).str.extract(r"//([^/]+)")[0],
            "installed_size": pd.to_numeric(packages["Installed-Size"], errors="coerce"),
            "download_size": pd.to_numeric(packages["Size"], errors="coerce"),
            **relations,
            "recommends": packages.get("Recommends", pd.Series(dtype=str)).notna().map({True: "yes", False: "no"}),
            "description": packages["Description"],
        }
    )


def _recommends(folder: Path) -> dict:
    table = _package_table().drop(columns=["description"])
    path = folder / "raw" / "recommends.csv"
    path.parent.mkdir(parents=True)
    table.to_csv(path, index=False)
    return {"path": path, "label": "recommends", "task": "classification"}


def _package_size(folder: Path) -> dict:
    table = _package_table().drop(columns=["download_size", "recommends"])
    table["installed_size"] = np.log2(table["installed_size"].clip(lower=1)).round(3)
    path = folder / "raw" / "package_size.csv"
    path.parent.mkdir(parents=True)
    table.to_csv(path, index=False)
    return {"path": path, "label": "installed_size", "task": "regression", "kinds": "description:text"}


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
    writers = {"debian": _debian, "docstrings": _docstrings, "recommends": _recommends, "package_size": _package_size}
    return writers[name](folder)


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
        "metric": ", ".join(metrics["headline"]["definition"]),
        "rows": metrics["splits"]["test"]["rows"],
        "training_s": _training_seconds(folder / "data" / "overnight.db"),
        "headline": metrics["headline"]["value"],
        "baselines": {baseline: found["headline"] for baseline, found in metrics["baselines"].items()},
        "diagnosis": metrics["diagnosis"]["diagnosis"],
    }


def _training_seconds(database: Path) -> float:
    """The TrainModel run's wall time, from the runs table."""
    import sqlite3

    with sqlite3.connect(database) as connection:
        (seconds,) = connection.execute("SELECT duration_s FROM runs WHERE task LIKE 'TrainModel%'").fetchone()
    return round(seconds, 1)


def results(names: tuple[str, ...] = DATA_SETS) -> list[Result]:
    found = []
    for name in names:
        measured = run_child("benchmarks.bench_quality", name, str(scratch_folder(f"bench-quality-{name}-")))
        metric = measured["metric"]
        best = max(measured["baselines"], key=measured["baselines"].get)
        others = ", ".join(f"{baseline} {value:.3f}" for baseline, value in measured["baselines"].items())
        found.append(
            Result(
                f"quality {name}: auto - best baseline ({metric})",
                measured["headline"] - measured["baselines"][best],
                None,
                metric,
                f">= {-TOLERANCE.get(metric, 0.01)}",
                f"auto {measured['headline']:.3f} ({measured['diagnosis']}) vs {others}; {measured['rows']} test rows; "
                f"trained in {measured['training_s']} s",
            )
        )
    return found


if __name__ == "__main__":
    np.seterr(all="ignore")
    print(json.dumps(measure(sys.argv[1], Path(sys.argv[2]))))
