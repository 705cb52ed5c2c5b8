"""Hosts on one machine for the cluster tests: network namespaces on a bridge, each with a host
name of its own; luigid and PostgreSQL reachable from all of them at the bridge's address.

The data folder is shared by path, as an NFS mount at the same path would share it. What a real
host keeps to itself is given to each namespace: Luigi's pid-lock folder (`--lock-pid-dir`) and
the temporary folder where GPU card locks live (TMPDIR). Needs root and iproute2 (`ip netns`).
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import socket
import subprocess
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path


def why_namespaces_cannot_be_made() -> str | None:
    if os.geteuid() != 0:
        return "network namespaces need root"
    missing = [tool for tool in ("ip", "unshare", "hostname") if shutil.which(tool) is None]
    return f"missing {', '.join(missing)}" if missing else None


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=30)


@dataclass
class Host:
    name: str  # its host name, as runs.host records it
    namespace: str
    private: Path  # its own /tmp: Luigi's pid locks and the card locks

    def command(self, *command: str) -> list[str]:
        """`command` run on this host: in its network namespace, under its own host name."""
        hostname = 'hostname "$0" && exec "$@"'
        return ["ip", "netns", "exec", self.namespace, "unshare", "--uts", "sh", "-c", hostname, self.name, *command]

    def environment(self, base: dict[str, str]) -> dict[str, str]:
        return {**base, "TMPDIR": str(self.private)}


class Network:
    """A bridge at `gateway` and one namespace per host on it; removed by close()."""

    def __init__(self, hosts: int, folder: Path):
        tag = uuid.uuid4().hex[:6]
        subnet = f"10.{random.randint(100, 250)}.{random.randint(0, 255)}"
        self.gateway, self.bridge, self.hosts = f"{subnet}.1", f"ovb{tag}", []
        try:
            self._make(hosts, tag, subnet, folder)
        except BaseException:
            self.close()  # what was made so far
            raise

    def _make(self, hosts: int, tag: str, subnet: str, folder: Path) -> None:
        _ip("link", "add", self.bridge, "type", "bridge")
        _ip("addr", "add", f"{self.gateway}/24", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")
        for number in range(1, hosts + 1):
            namespace, outside, inside = f"ovn{tag}{number}", f"ovo{tag}{number}", f"ovi{tag}{number}"
            _ip("netns", "add", namespace)
            self.hosts.append(Host(f"host-{number}", namespace, folder / f"host-{number}"))
            _ip("link", "add", outside, "type", "veth", "peer", "name", inside)
            _ip("link", "set", outside, "master", self.bridge, "up")
            _ip("link", "set", inside, "netns", namespace)
            _ip("-n", namespace, "addr", "add", f"{subnet}.{10 + number}/24", "dev", inside)
            _ip("-n", namespace, "link", "set", inside, "up")
            _ip("-n", namespace, "link", "set", "lo", "up")
            (folder / f"host-{number}" / "luigi").mkdir(parents=True)

    def close(self) -> None:
        for host in self.hosts:
            subprocess.run(["ip", "netns", "del", host.namespace], capture_output=True, timeout=30)
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True, timeout=30)


class Forwarder:
    """A TCP listener on the bridge that forwards to a loopback-only server (this machine's
    PostgreSQL listens on 127.0.0.1): the hosts reach it at (gateway, port)."""

    def __init__(self, address: str, target: tuple[str, int]):
        self.target = target
        self.listener = socket.create_server((address, 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:  # closed
                return
            server = socket.create_connection(self.target)
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=_pump, args=(source, sink), daemon=True).start()

    def close(self) -> None:
        self.listener.close()


def _pump(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for end in (source, sink):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)
