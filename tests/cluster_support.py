"""A Redis Cluster of the tests' own: 3 masters and 3 replicas on free loopback ports.

``redis-server --cluster-enabled yes`` six times, then ``redis-cli --cluster create
--cluster-replicas 1``; no persistence, every file in a temporary directory. The session
fixture ``redis_cluster`` (tests/conftest.py) starts one for the whole run and stops it at the
end; tests flush it (``cluster_client``) rather than start their own.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field

import redis
from procs_support import free_port

BUS_OFFSET = 10_000
"""A cluster node also listens on its port + 10000 (the cluster bus)."""


def free_cluster_ports(n: int) -> list[int]:
    """``n`` free ports, each with its bus port (port + 10000) free too, all below the
    ephemeral range (see :func:`procs_support.free_port`: a client reconnecting to a killed
    master's port could otherwise connect to itself)."""
    ports: list[int] = []
    while len(ports) < n:
        port = free_port(span=BUS_OFFSET)
        taken = {*ports, *(p + BUS_OFFSET for p in ports)}
        if port not in taken and port + BUS_OFFSET not in taken:
            ports.append(port)
    return ports


@dataclass
class Cluster:
    """The processes of a local cluster; :meth:`stop` ends them all."""

    ports: list[int]
    dir: str = field(default_factory=lambda: tempfile.mkdtemp(prefix="dlv-test-cluster-"))
    procs: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def url(self) -> str:
        """The service's URL of this cluster (one seed node, the others as ``node``)."""
        first, *rest = self.ports
        seeds = "&".join(f"node=127.0.0.1:{p}" for p in rest[:2])
        return f"redis+cluster://127.0.0.1:{first}" + (f"?{seeds}" if seeds else "")

    def start_node(self, port: int) -> None:
        exe = shutil.which("redis-server")
        assert exe is not None
        self.procs[port] = subprocess.Popen(
            [exe, "--port", str(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
             "--cluster-config-file", f"nodes-{port}.conf", "--cluster-node-timeout", "1000",
             "--save", "", "--appendonly", "no", "--dir", self.dir],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip

    def kill_node(self, port: int) -> None:
        proc = self.procs.pop(port, None)
        if proc is not None:
            proc.kill()
            proc.wait()

    def masters(self) -> list[int]:
        """The ports of the nodes that are masters now (as a live node sees it)."""
        for port in self.procs:
            try:
                client = redis.Redis(port=port, socket_timeout=1)
                text = client.execute_command("CLUSTER", "NODES").decode()
                client.close()
            except redis.RedisError:
                continue
            return sorted(
                int(line.split()[1].split("@")[0].rsplit(":", 1)[1])
                for line in text.splitlines()
                if "master" in line.split()[2] and "fail" not in line.split()[2]
            )
        return []

    def stop(self) -> None:
        for port in list(self.procs):
            self.kill_node(port)
        shutil.rmtree(self.dir, ignore_errors=True)

    def wait_ok(self, within_s: float = 20.0) -> None:
        """Until every live node says ``cluster_state:ok``."""
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline:
            if all(_state_ok(port) for port in self.procs):
                return
            time.sleep(0.1)
        raise AssertionError("the cluster did not reach cluster_state:ok")


def _state_ok(port: int) -> bool:
    try:
        client = redis.Redis(port=port, socket_timeout=1)
        info = client.execute_command("CLUSTER", "INFO").decode()
        client.close()
    except redis.RedisError:
        return False
    return "cluster_state:ok" in info


def start_cluster(within_s: float = 30.0) -> Cluster:
    """Six nodes (3 masters, 3 replicas), created and answering; stop it with ``stop()``."""
    cluster = Cluster(free_cluster_ports(6))
    try:
        for port in cluster.ports:
            cluster.start_node(port)
        deadline = time.monotonic() + within_s
        for port in cluster.ports:
            while not _answers(port):
                if time.monotonic() > deadline:
                    raise AssertionError(f"cluster node {port} did not start")
                time.sleep(0.02)
        cli = shutil.which("redis-cli")
        assert cli is not None
        subprocess.run(
            [cli, "--cluster", "create", *(f"127.0.0.1:{p}" for p in cluster.ports),
             "--cluster-replicas", "1", "--cluster-yes"],
            check=True, capture_output=True, timeout=within_s,
        )  # fmt: skip
        cluster.wait_ok(within_s)
        _wait_replicas(cluster, within_s)
    except BaseException:
        cluster.stop()
        raise
    return cluster


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2) as s:
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def _wait_replicas(cluster: Cluster, within_s: float) -> None:
    """Until each master has a replica in sync (a failover needs one)."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        synced = 0
        for port in cluster.ports:
            client = redis.Redis(port=port, socket_timeout=1)
            info = client.info("replication")
            client.close()
            if info.get("role") == "slave" and info.get("master_link_status") == "up":
                synced += 1
        if synced >= 3:
            return
        time.sleep(0.1)
    raise AssertionError("the cluster's replicas did not sync")


def cluster_available() -> str | None:
    """Why a cluster cannot be started here (``None``: it can)."""
    for exe in ("redis-server", "redis-cli"):
        if shutil.which(exe) is None:
            return f"{exe} is not installed (Debian's redis-server package has both)"
    return None
