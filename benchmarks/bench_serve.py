"""`overnight serve` against the endpoint a user would write instead, and against the model alone.

Two models, trained here by the pipeline itself: the demo's digits CNN (a base64 PNG per row) and
an MLP on scikit-learn's breast-cancer table (30 numbers per row). For each, one-row requests
(`dataframe_split` JSON) from `wrk` (Debian's HTTP load generator, on the same 2 cores):

- **overnight serve**: every answer validated, journaled with fsync and loaded into SQLite;
- **the user's endpoint** (benchmarks/serve_baseline.py): Starlette on uvicorn, `model.predict`
  per request, nothing validated or logged;
- **the floor**: the model called in-process on the same row, already preprocessed.

Reported: latency p50 and p99 at concurrency 1, requests/s and p99 at concurrency 32. Targets:
at concurrency 32 at least 10 times the user's endpoint's requests/s; at concurrency 1 a p99
under 25 ms.

python -m benchmarks.bench_serve                 # 10 s per point
python -m benchmarks.bench_serve --seconds 3
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import logging
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx

from benchmarks.common import Result, scratch_folder, table

REPO_ROOT = Path(__file__).resolve().parents[1]
CONCURRENCY = (1, 32)
UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0}


def results(seconds: float = 10.0) -> list[Result]:
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed: apt-get install wrk")
    folder = scratch_folder("bench-serve-")
    found = []
    for name, config, body in (_digits(folder / "digits"), _tabular(folder / "tabular")):
        found += _model_results(name, config, body, seconds, folder)
    return found


def _model_results(name: str, config: Path, body: bytes, seconds: float, folder: Path) -> list[Result]:
    model_folder = _production_folder(config)
    floor = _floor(model_folder, body)
    script = folder / f"{name}.lua"
    script.write_text(_lua(body))
    ours = _measure(["-m", "tasks.cli", "serve", "--port", "{port}"], config, script, seconds)
    stored = _online_rows(config)  # the server stopped: its journal is loaded
    user = _measure(["-m", "benchmarks.serve_baseline", str(model_folder), "{port}"], config, script, seconds)
    note = f"wrk, one-row dataframe_split POSTs, {seconds:g} s per point"
    return [
        Result(
            f"{name}: p50 at concurrency 1, overnight serve against the user's",
            ours[1]["p50"],
            user[1]["p50"],
            "ms",
            "<= 1.0",
            note,
        ),
        Result(f"{name}: p99 at concurrency 1, overnight serve", ours[1]["p99"], None, "ms", "<= 25"),
        Result(f"{name}: p99 at concurrency 1, the user's endpoint", user[1]["p99"], None, "ms", "<= 1000"),
        Result(f"{name}: p99 of the model alone, one row", floor["p99"], None, "ms", "<= 25", floor["note"]),
        Result(
            f"{name}: requests/s at concurrency 32, overnight serve against the user's",
            ours[32]["rps"],
            user[32]["rps"],
            "req/s",
            ">= 10",
        ),
        Result(
            f"{name}: p99 at concurrency 32, overnight serve against the user's",
            ours[32]["p99"],
            user[32]["p99"],
            "ms",
            "<= 1.0",
        ),
        Result(f"{name}: rows/s of the model alone, 32 rows a call", floor["rows_per_s"], None, "rows/s", ">= 0"),
        Result(
            f"{name}: answers in SQL once the server stopped, against answers sent",
            stored,
            ours["answered"],
            "rows",
            ">= 1.0",
            "every answer one row, journaled then loaded by the loader process; a few more where wrk "
            "stopped with requests in flight that the server still answered",
        ),
    ]


def _online_rows(config: Path) -> int:
    with contextlib.closing(sqlite3.connect(config.parent / "data" / "overnight.db")) as connection:
        return connection.execute("SELECT COUNT(*) FROM predictions WHERE origin = 'online'").fetchone()[0]


# --- the two models -------------------------------------------------------------------------------


def _digits(root: Path) -> tuple[str, Path, bytes]:
    config = _config(root, dataset={"path": str(root / "data" / "raw" / "digits")}, TrainModel={"architecture": "cnn"})
    _run(config, "-m", "tasks.cli", "example-data")
    _run(config, str(Path(sys.executable).with_name("luigi")), "--module", "tasks", "RegisterModel")
    image = sorted((root / "data" / "incoming").glob("*/*.png"))[0]
    return "digits CNN", config, _split({"image": base64.b64encode(image.read_bytes()).decode()})


def _tabular(root: Path) -> tuple[str, Path, bytes]:
    from sklearn.datasets import load_breast_cancer

    frame = load_breast_cancer(as_frame=True).frame
    frame.columns = [re.sub(r"\W+", "_", column) for column in frame.columns]
    path = root / "raw" / "breast_cancer.csv"
    path.parent.mkdir(parents=True)
    frame.to_csv(path, index=False)
    config = _config(root, dataset={"path": str(path), "label": "target"}, TrainModel={"architecture": "mlp"})
    _run(config, str(Path(sys.executable).with_name("luigi")), "--module", "tasks", "RegisterModel")
    row = frame.drop(columns="target").iloc[0].to_dict()
    return "breast-cancer MLP", config, _split(row)


def _config(root: Path, **sections: dict) -> Path:
    sections = {
        "core": {"local_scheduler": "true", "no_lock": "true"},
        "overnight": {"data_root": str(root / "data"), "database_url": f"sqlite:///{root / 'data' / 'overnight.db'}"},
        "TrainModel": {"epochs": "2", **sections.pop("TrainModel", {})},
        **sections,
    }
    root.mkdir(parents=True, exist_ok=True)
    config = root / "luigi.cfg"
    config.write_text(
        "".join(f"[{name}]\n" + "".join(f"{k} = {v}\n" for k, v in values.items()) for name, values in sections.items())
    )
    return config


def _split(row: dict) -> bytes:
    return json.dumps({"dataframe_split": {"columns": list(row), "data": [list(row.values())]}}).encode()


def _env(config: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key != "OVERNIGHT_DATABASE_URL"}
    return env | {"LUIGI_CONFIG_PATH": str(config), "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}


def _run(config: Path, *command: str) -> None:
    program = list(command) if command[0] != "-m" else [sys.executable, *command]
    subprocess.run(program, cwd=REPO_ROOT, env=_env(config), check=True, capture_output=True, timeout=1800)


def _production_folder(config: Path) -> Path:
    code = "from tasks import recording; print(recording.model_row(recording.production_version())['path'])"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, env=_env(config), check=True, capture_output=True, text=True
    )
    return Path(done.stdout.strip().splitlines()[-1])


# --- measuring ------------------------------------------------------------------------------------


def _floor(model_folder: Path, body: bytes) -> dict:
    """The model called in-process on the request's row, decoded and transformed beforehand."""
    import numpy as np

    from pipeline.artifacts.model import ModelFolder
    from pipeline.serving.requests import rows_from_body
    from pipeline.serving.scoring import CompiledModel
    from pipeline.stages.features import transform
    from pipeline.stages.tfdata import image_batches

    folder = ModelFolder(model_folder)
    preprocessor = folder.preprocessor()
    model = CompiledModel(folder.load_model())
    frame = rows_from_body(body, "application/json", max_rows=1)
    for column in preprocessor.image:
        path = scratch_folder("bench-serve-row-") / "row.png"
        path.write_bytes(base64.b64decode(frame[column][0]))
        frame[column] = [str(path)]
    features = transform(frame, preprocessor)
    if preprocessor.image:
        features = next(image_batches(features, preprocessor, batch_size=1))
    for _ in range(50):  # the first calls trace the function
        model.predict_on_batch(features)
    times = []
    for _ in range(500):
        start = time.perf_counter()
        model.predict_on_batch(features)
        times.append(time.perf_counter() - start)
    many = {name: np.repeat(values, 32, axis=0) for name, values in features.items()}
    model.predict_on_batch(many)
    start = time.perf_counter()
    for _ in range(100):
        model.predict_on_batch(many)
    rows_per_s = 3200 / (time.perf_counter() - start)
    times.sort()
    note = "CompiledModel (what the server calls) on the row already decoded and transformed, 500 calls"
    return {"p50": times[250] * 1000, "p99": times[494] * 1000, "rows_per_s": rows_per_s, "note": note}


def _measure(command: list[str], config: Path, script: Path, seconds: float) -> dict:
    """wrk at each concurrency against a server started by `command` ({port} filled in); with
    "answered": every request answered, the first and the warm-up's included."""
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, *(part.format(port=port) for part in command)],
        cwd=REPO_ROOT,
        env=_env(config),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        _wait(url, script, server)
        warm_up = _wrk(url, script, 1, min(seconds, 3.0))  # first calls trace the model
        measured = {concurrency: _wrk(url, script, concurrency, seconds) for concurrency in CONCURRENCY}
        answered = 1 + warm_up["requests"] + sum(point["requests"] for point in measured.values())
        return {**measured, "answered": answered}
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)


def _wait(url: str, script: Path, server: subprocess.Popen) -> None:
    body = re.search(r"wrk.body = \[==\[(.*)\]==\]", script.read_text(), re.S).group(1).encode()
    for _ in range(300):
        if server.poll() is not None:
            raise RuntimeError(f"the server exited: {server.stderr.read().decode()[-3000:]}")
        try:
            response = httpx.post(f"{url}/invocations", content=body, headers={"Content-Type": "application/json"})
            if response.status_code == 200:
                return
            raise RuntimeError(f"the server answered {response.status_code}: {response.text[:500]}")
        except httpx.TransportError:
            time.sleep(0.2)
    raise RuntimeError("the server did not come up in 60 s")


def _wrk(url: str, script: Path, concurrency: int, seconds: float) -> dict:
    threads = min(concurrency, 2)
    done = subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{concurrency}",
            f"-d{seconds:g}s",
            "--timeout",  # wrk's own 2 s would drop the user's endpoint's slowest answers from its figures
            "30s",
            "--latency",
            "-s",
            str(script),
            f"{url}/invocations",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    text = done.stdout
    if "Non-2xx" in text or "Socket errors" in text:
        raise RuntimeError(f"wrk saw failed requests:\n{text}")
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1)),
        "requests": int(re.search(r"(\d+) requests in", text).group(1)),
        "p50": _latency(text, "50%"),
        "p99": _latency(text, "99%"),
    }


def _latency(text: str, percentile: str) -> float:
    value, unit = re.search(rf"{percentile}\s+([\d.]+)(us|ms|s)", text).groups()
    return float(value) * UNITS[unit] * 1000  # ms


def _lua(body: bytes) -> str:
    return (
        f'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\nwrk.body = [==[{body.decode()}]==]\n'
    )


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0, help="wrk's duration per point")
    arguments = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    print(table(results(arguments.seconds)))


if __name__ == "__main__":
    main()
