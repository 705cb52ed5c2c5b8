"""`make bench`: every benchmark, each figure beside its baseline and target.

python -m benchmarks.run_all            # the sizes of the issue (minutes)
python -m benchmarks.run_all --tiny     # a smoke run on small sizes (seconds)
python -m benchmarks.run_all --only training --only noop   # some of them
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from benchmarks import (
    bench_decoding,
    bench_drift,
    bench_fingerprint,
    bench_gpu,
    bench_history,
    bench_image_size,
    bench_night,
    bench_noop,
    bench_online_log,
    bench_prediction_log,
    bench_quality,
    bench_scoring,
    bench_shards,
    bench_training,
)
from benchmarks.common import table

SIZES = {
    "full": {
        "log_rows": 1_000_000,
        "fingerprint_mb": 1024,
        "nights": 365,
        "noop_rounds": bench_noop.ROUNDS,
        "score_rows": 1_000_000,
        "train_rows": 50_000,
        "train_rounds": 3,
        "gpu_images": 20_000,
        "decode_images": 5_000,
        "quality_sets": bench_quality.DATA_SETS,
        "drift_rows": (100_000, 1_000_000),
        "night_rows": (200_000, 1_000_000),
        "shard_night": (1_000_000, 3),
        "night_images": 20_000,
        "huge_side": 12_000,
        "history": (365, 10_000),  # a year of nights, 10,000 predictions each
        "online_day": (200_000, 200),  # a day of online answers, loaded 200 at a time
    },
    "tiny": {
        "log_rows": 20_000,
        "fingerprint_mb": 32,
        "nights": 5,
        "noop_rounds": 1,
        "score_rows": 5_000,
        "train_rows": 4_000,
        "train_rounds": 1,
        "gpu_images": 1_000,
        "decode_images": 100,
        "quality_sets": ("wine",),
        "drift_rows": (10_000,),
        "night_rows": (2_000,),
        "shard_night": (8_000, 1),
        "night_images": 200,
        "huge_side": 3_000,
        "history": (30, 500),
        "online_day": (5_000, 100),
    },
}
BENCHMARKS = {  # in the order of the table
    "log-sqlite": lambda size: bench_prediction_log.sqlite_results(size["log_rows"]),
    "log-postgres": lambda size: bench_prediction_log.postgres_results(size["log_rows"]),
    "fingerprint": lambda size: bench_fingerprint.results(size["fingerprint_mb"]),
    "noop": lambda size: bench_noop.results(size["nights"], size["noop_rounds"]),
    "scoring": lambda size: bench_scoring.results(size["score_rows"]),
    "shards": lambda size: bench_shards.results(*size["shard_night"]),
    "night": lambda size: bench_night.results(
        size["night_rows"], size["night_images"], postgres=size.get("postgres", True)
    ),
    "training": lambda size: bench_training.results(size["train_rows"], size["train_rounds"]),
    "decoding": lambda size: bench_decoding.results(size["decode_images"]),
    "image-size": lambda size: bench_image_size.results(size["huge_side"]),
    "quality": lambda size: bench_quality.results(size["quality_sets"]),
    "drift": lambda size: bench_drift.results(size["drift_rows"]),
    "history": lambda size: bench_history.results(*size["history"], postgres=size.get("postgres", True)),
    "online-log": lambda size: bench_online_log.results(*size["online_day"], postgres=size.get("postgres", True)),
    "gpu": lambda size: bench_gpu.results(size["gpu_images"]),  # no rows without a GPU
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tiny", action="store_true", help="small sizes: a smoke run")
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--only", action="append", choices=sorted(BENCHMARKS), help="run this one (repeatable)")
    arguments = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    size = SIZES["tiny" if arguments.tiny else "full"]
    chosen = [name for name in BENCHMARKS if name in (arguments.only or BENCHMARKS)]
    if arguments.skip_postgres:
        size = {**size, "postgres": False}
        if "log-postgres" in chosen:
            chosen.remove("log-postgres")
    results = [result for name in chosen for result in BENCHMARKS[name](size)]
    print(table(results))
    if "gpu" in chosen and not bench_gpu.gpu_visible():
        print("GPU figures: not measured, nvidia-smi lists no GPU this process may use (docs/performance.md)")
    return 0 if all(r.met for r in results) or arguments.tiny else 1


if __name__ == "__main__":
    sys.exit(main())
