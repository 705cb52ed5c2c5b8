"""The image's HEALTHCHECK: a server answers /ping; a container running anything else is healthy.

One image runs the nightly job, training and the server; only the server has an endpoint to ask.
"""

from __future__ import annotations

import sys
import urllib.request
from pathlib import Path


def serving_port(arguments: list[str]) -> int | None:
    """The port of the `overnight serve` these arguments start (PID 1's: the entry point execs
    it), else None."""
    if "serve" not in arguments:
        return None
    for position, argument in enumerate(arguments):
        if argument.startswith("--port="):
            return int(argument.split("=", 1)[1])
        if argument == "--port" and position + 1 < len(arguments):
            return int(arguments[position + 1])
    return 8080  # [serve] port's default; a port set in luigi.cfg alone is not seen here


if __name__ == "__main__":
    port = serving_port(Path("/proc/1/cmdline").read_bytes().decode(errors="replace").split("\0"))
    if port is None:
        sys.exit(0)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=4) as answer:
            sys.exit(0 if answer.status == 200 else 1)
    except OSError as error:
        print(f"/ping on port {port}: {error}", file=sys.stderr)
        sys.exit(1)
