"""Fixtures for task tests: a fresh Luigi configuration and data folder per test.

Like Luigi's own tests, each test gets its own config file (what LUIGI_CONFIG_PATH names in real
use) and an empty task instance cache, so no setting or task leaks from one test to the next.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from luigi.configuration.cfg_parser import LuigiConfigParser
from luigi.task_register import Register

from tests.tasks import templates
from tests.tasks.templates import Template

REPO_ROOT = Path(__file__).resolve().parents[2]
TINY_TRAINING = {"epochs": "1", "batch_size": "16", "patience": "0"}


def config_text(sections: dict[str, dict[str, str]]) -> str:
    return "\n".join(
        f"[{name}]\n" + "".join(f"{key} = {value}\n" for key, value in options.items())
        for name, options in sections.items()
    )


@pytest.fixture
def configure(tmp_path, monkeypatch):
    """configure(dataset={...}, TrainModel={...}) -> the config file's path, now in force."""
    monkeypatch.delenv("OVERNIGHT_DATABASE_URL", raising=False)

    def apply(database_url: str | None = None, **sections: dict[str, str]) -> Path:
        if database_url:
            # The environment variable, as in production: a URL's % would trip Luigi's interpolation.
            monkeypatch.setenv("OVERNIGHT_DATABASE_URL", database_url)
        merged = {
            "core": {"local_scheduler": "true", "no_lock": "true"},
            "overnight": {
                "data_root": str(tmp_path / "data"),
                "database_url": f"sqlite:///{tmp_path / 'data' / 'overnight.db'}",
            },
            "TrainModel": dict(TINY_TRAINING),
        }
        for name, options in sections.items():
            merged.setdefault(name, {}).update(options)
        path = tmp_path / "test.cfg"
        path.write_text(config_text(merged))
        monkeypatch.setattr(LuigiConfigParser, "_instance", None)
        monkeypatch.setattr(LuigiConfigParser, "_config_paths", [str(path)])
        Register.clear_instance_cache()
        LuigiConfigParser.instance()
        return path

    yield apply
    Register.clear_instance_cache()


@pytest.fixture
def tabular_csv(tmp_path) -> Path:
    """Numeric and string columns with missing values; the label depends on both."""
    rng = np.random.default_rng(0)
    rows = 240
    size = rng.normal(10, 3, rows)
    colour = rng.choice(["red", "green", "blue"], rows)
    label = np.where((size > 10) ^ (colour == "red"), "big", "small")
    table = pd.DataFrame(
        {
            "size": size.round(3),
            "weight": rng.normal(50, 10, rows).round(2),
            "colour": colour,
            "island": rng.choice(["north", "south"], rows),
            "label": label,
        }
    )
    table.loc[::17, "size"] = None
    table.loc[::23, "colour"] = None
    path = tmp_path / "raw" / "tabular.csv"
    path.parent.mkdir(parents=True)
    table.to_csv(path, index=False)
    return path


@pytest.fixture
def text_csv(tmp_path) -> Path:
    rng = np.random.default_rng(1)
    good = ["great fun lovely day", "wonderful kind and warm", "bright happy sunny morning"]
    bad = ["awful cold rainy night", "terrible rude and grim", "dark sad broken evening"]
    rows = [(f"{rng.choice(good)} {rng.choice(good)} indeed", "positive") for _ in range(60)]
    rows += [(f"{rng.choice(bad)} {rng.choice(bad)} indeed", "negative") for _ in range(60)]
    table = pd.DataFrame(rows, columns=["review", "sentiment"]).sample(frac=1, random_state=0)
    path = tmp_path / "raw" / "reviews.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(path, index=False)
    return path


@pytest.fixture
def regression_csv(tmp_path) -> Path:
    rng = np.random.default_rng(2)
    rows = 200
    x = rng.uniform(0, 10, rows)
    table = pd.DataFrame(
        {
            "x": x.round(3),
            "noise": rng.normal(size=rows).round(3),
            "kind": rng.choice(["a", "b"], rows),
            "price": (3 * x + 100 + rng.normal(0, 0.5, rows)).round(2),
        }
    )
    path = tmp_path / "raw" / "prices.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(path, index=False)
    return path


@pytest.fixture
def digits_folder(tmp_path) -> Path:
    from pipeline.examples import write_digits

    root = tmp_path / "raw" / "digits"
    write_digits(root, limit=150)
    return root


PER_NIGHT = 40  # images per example night in the `trained` fixture
TRAINED_TRAINING = {"architecture": "cnn", "epochs": "2"}


@pytest.fixture(scope="session")
def trained_templates() -> Iterator[tuple[dict[str, Template], list]]:
    """backend -> the trained template, filled by the first test that asks (tests/tasks/templates.py)."""
    found: dict[str, Template] = {}
    drops: list = []
    yield found, drops
    for drop in drops:
        drop()


@pytest.fixture
def trained(request, configure, tmp_path, database_url, trained_templates, tmp_path_factory):
    """Example data written, a model trained, evaluated and promoted; returns (url, examples, config).

    Trained once per worker and backend, then copied: see tests/tasks/templates.py.
    """
    from luigi.execution_summary import LuigiStatusCode

    from pipeline.examples import write_examples
    from tasks import RegisterModel
    from tests.tasks.support import build

    found, drops = trained_templates
    backend = templates.backend(database_url)
    basetemp = tmp_path_factory.getbasetemp()
    live = basetemp / "trained" / "data"

    def settings(url: str, data_root: Path) -> Path:
        # The data set's path is the live folder's: it is part of every version.
        return configure(
            database_url=url,
            overnight={"data_root": str(data_root)},
            dataset={"path": str(live / "raw" / "digits")},
            TrainModel=TRAINED_TRAINING,
        )

    if backend not in found:
        # Trained in the live folder itself: the registry's paths lead there, not into this test's.
        templates.reset(live)
        examples = write_examples(live, nights=3, per_night=PER_NIGHT)
        url, drop = templates.new_template_database(database_url, basetemp / "trained" / f"{backend}-database")
        drops.append(drop)
        settings(url, live)
        result = build(RegisterModel())
        assert result.status in (LuigiStatusCode.SUCCESS, LuigiStatusCode.SUCCESS_WITH_RETRY), result.summary_text
        found[backend] = templates.keep(live, basetemp / "trained" / f"{backend}-template", url, examples)
    template = found[backend]
    templates.reset(live, template.data)
    # The test's data root is its own folder, a link to the live one: messages name its paths.
    (tmp_path / "data").symlink_to(live, target_is_directory=True)
    url, drop = templates.copy_database(template, database_url)
    request.addfinalizer(drop)
    return url, copy.deepcopy(template.examples), settings(url, tmp_path / "data")
