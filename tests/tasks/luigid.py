"""A real luigid, started by scripts/scheduler.sh, and its JSON API, for the scheduler tests."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def api(port: int, method: str, address: str = "127.0.0.1", **data) -> dict:
    query = urllib.parse.urlencode({"data": json.dumps(data)})
    with urllib.request.urlopen(f"http://{address}:{port}/api/{method}?{query}", timeout=10) as response:
        return json.loads(response.read())["response"]


class Luigid:
    """scripts/scheduler.sh on a free port (loopback unless an address is given); restartable on
    the same state. `settings`: more of the script's environment variables."""

    def __init__(self, state: Path, address: str = "127.0.0.1", **settings: str):
        self.address, self.port, self.state, self.process = address, free_port(), state, None
        self.settings = settings

    def start(self) -> None:
        env = dict(os.environ, OVERNIGHT_SCHEDULER_PORT=str(self.port), OVERNIGHT_SCHEDULER_DIR=str(self.state))
        env.update(OVERNIGHT_SCHEDULER_ADDRESS=self.address, **self.settings)
        self.process = subprocess.Popen(
            [str(REPO_ROOT / "scripts" / "scheduler.sh")],
            env=env,
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://{self.address}:{self.port}/", timeout=2).close()
                return
            except OSError as error:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"luigid did not start: {self.process.stderr.read()[-2000:]}") from error
                time.sleep(0.2)

    def stop(self) -> None:
        os.killpg(self.process.pid, signal.SIGTERM)  # luigid saves its state on SIGTERM
        self.process.wait(timeout=30)


# luigid prunes (fails a dead worker's task, offers a failed one again) every 60 s, fixed in
# luigi/server.py: a test would wait two of those passes.
FAST_PRUNE = """
import tornado.ioloop

_periodic = tornado.ioloop.PeriodicCallback


def _every_second_at_most(callback, ms, *args, **kwargs):
    return _periodic(callback, min(ms, 1000), *args, **kwargs)


tornado.ioloop.PeriodicCallback = _every_second_at_most
"""


def quick_to_take_over(state: Path, folder: Path, address: str = "127.0.0.1") -> Luigid:
    """The scheduler script's luigid with its delays shortened: a dead worker noticed after 5 s,
    its task offered again 5 s later, and the prune pass every second (`folder` holds the
    sitecustomize that makes it so)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text(FAST_PRUNE)
    return Luigid(
        state,
        address=address,
        OVERNIGHT_SCHEDULER_DISCONNECT_DELAY="5",
        OVERNIGHT_SCHEDULER_RETRY_DELAY="5",
        PYTHONPATH=str(folder),
    )
