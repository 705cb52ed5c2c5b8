"""Helpers for the server's tests: `overnight serve` as a real process, a TCP proxy that can cut
the database off, and digits as requests."""

from __future__ import annotations

import base64
import contextlib
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from tests.tasks.support import subprocess_env

JSON = {"Content-Type": "application/json"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ServerProcess:
    """`overnight serve` on a free port, started and waited for; stop() or kill() it."""

    def __init__(self, config: Path, database_url: str, cwd: Path, *arguments: str, **env: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        environment = subprocess_env(config) | {"OVERNIGHT_DATABASE_URL": database_url} | env
        self.log = cwd / f"serve-{self.port}.log"
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "tasks.cli", "serve", "--port", str(self.port), *arguments],
                cwd=cwd,
                env=environment,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a group of its own: kill() reaches its workers too
            )
        self._wait_until_up()

    def _wait_until_up(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"the server exited {self.process.returncode}:\n{self.log.read_text()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/ping", timeout=1).status_code == 200:
                    return
            time.sleep(0.2)
        raise AssertionError(f"the server did not answer /ping in {timeout} s:\n{self.log.read_text()[-3000:]}")

    def health(self) -> dict:
        return httpx.get(f"{self.url}/health", timeout=10).json()

    def wait_for_empty_journal(self, timeout: float = 30.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            health = self.health()
            if health["journal_backlog_rows"] == 0:
                return health
            time.sleep(0.2)
        raise AssertionError(f"the journal still holds rows after {timeout} s: {self.health()}")

    def stop(self) -> bool:
        """SIGTERM, as a service manager stops it: the server drains its journal first. True when it
        ended by that signal after its graceful shutdown (uvicorn raises the signal again at the
        end, so that a service manager sees how it stopped)."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=60) in (0, -signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL to the server and every process it started (workers, journal loaders), as a
        crash of the machine's service would: none is left serving or loading."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)


def digit_payloads(folder: Path) -> list[str]:
    """The example night's digits, as the base64 text a request carries."""
    return [base64.b64encode(path.read_bytes()).decode() for path in sorted(folder.glob("*.png"))]


class CuttableProxy:
    """127.0.0.1:<port> forwarded to a server; cut() refuses and drops every connection, mend() lets
    them through again: a database that goes away and comes back, for the process behind it."""

    def __init__(self, target_host: str, target_port: int):
        self.target = (target_host, target_port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self._open = threading.Event()
        self._open.set()
        self._connections: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def cut(self) -> None:
        self._open.clear()
        with self._lock:
            for connection in self._connections:
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
                    connection.close()
            self._connections.clear()

    def mend(self) -> None:
        self._open.set()

    def close(self) -> None:
        self.cut()
        self.listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self._open.is_set():
                client.close()
                continue
            try:
                server = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._connections += [client, server]
            threading.Thread(target=self._pipe, args=(client, server), daemon=True).start()

    @staticmethod
    def _pipe(first: socket.socket, second: socket.socket) -> None:
        sockets = [first, second]
        try:
            while True:
                readable, _, _ = select.select(sockets, [], [], 1.0)
                for source in readable:
                    data = source.recv(65536)
                    if not data:
                        return
                    (second if source is first else first).sendall(data)
        except OSError:
            return
        finally:
            for end in sockets:
                with contextlib.suppress(OSError):
                    end.close()
