"""Unchanged raw data is not reread: fingerprinting files a second time against the first time."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from benchmarks.common import Result, stopwatch
from pipeline.stages.fingerprint import fingerprint

FILE_MB = 16


def results(total_mb: int) -> list[Result]:
    folder = Path(tempfile.mkdtemp(prefix="bench-fingerprint-"))
    try:
        data = folder / "raw"
        data.mkdir()
        block = os.urandom(FILE_MB * 1024 * 1024)
        for index in range(max(1, total_mb // FILE_MB)):
            (data / f"part-{index:04d}.parquet").write_bytes(block[:-1] + bytes([index % 256]))
        cache = folder / "cache.json"
        with stopwatch() as first:
            fingerprint(data, cache)
        with stopwatch() as second:
            fingerprint(data, cache)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return [
        Result(
            f"fingerprint {total_mb:,} MB unchanged, second time",
            second["seconds"],
            None,
            "s",
            "<= 0.5",
            f"first time (hashing every byte): {first['seconds']:.2f} s",
        )
    ]
