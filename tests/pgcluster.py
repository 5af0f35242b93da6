"""A PostgreSQL primary and its streaming replica, started by a test and gone after it.

``initdb`` and ``pg_basebackup -R`` in a temporary directory, both servers on free
loopback ports with trust authentication. initdb refuses to run as root, so under
root every server program runs as the ``postgres`` user (``runuser``) and the
directory belongs to it. Every wait is bounded.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import psycopg

from tests.conftest import postgres_like

START_SECONDS = 60


class ClusterError(RuntimeError):
    pass


def postgres_bin() -> Path | None:
    """The newest PostgreSQL server binaries installed, if any."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/pg_basebackup"),
        key=lambda path: int(Path(path).parts[-3]),
    )
    return Path(found[-1]).parent if found else None


def free_port() -> int:
    with closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    def __init__(self, cluster: PrimaryAndReplica, name: str) -> None:
        self.cluster = cluster
        self.data = cluster.root / name
        self.log = cluster.root / f"{name}.log"
        self.port = free_port()

    def start(self, *settings: str) -> None:
        options = " ".join(
            [f"-p {self.port}", f"-k {self.cluster.root}", "-c listen_addresses=127.0.0.1"]
            + [f"-c {setting}" for setting in ("fsync=off", *settings)]
        )
        self.cluster.run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w",
                         "-t", str(START_SECONDS), "-o", options, "start")  # fmt: skip

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def stop(self) -> None:
        if self.running():
            self.cluster.run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w",
                             "-t", str(START_SECONDS), "stop")  # fmt: skip

    def connect(self) -> psycopg.Connection[Any]:
        return psycopg.connect(
            host="127.0.0.1", port=self.port, user="postgres", dbname="postgres",
            autocommit=True, connect_timeout=5,
        )  # fmt: skip

    def one(self, sql: str) -> Any:
        with self.connect() as conn:
            row = conn.execute(sql).fetchone()
            return row[0] if row else None

    def alias_settings(self) -> dict[str, Any]:
        return postgres_like(PORT=str(self.port), NAME="postgres")


class PrimaryAndReplica:
    def __init__(self) -> None:
        bin_dir = postgres_bin()
        if bin_dir is None:
            raise ClusterError("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin")
        self.bin = bin_dir
        self.root = Path(tempfile.mkdtemp(prefix="dbhealth-replica-"))
        self.user = pwd.getpwnam("postgres") if os.geteuid() == 0 else None
        if self.user is not None:
            os.chown(self.root, self.user.pw_uid, self.user.pw_gid)
        self.primary = Server(self, "primary")
        self.replica = Server(self, "replica")

    def run(self, program: str, *args: str) -> None:
        command = [str(self.bin / program), *args]
        if self.user is not None:
            command = ["runuser", "-u", "postgres", "--", *command]
        completed = subprocess.run(
            command, cwd=self.root, capture_output=True, text=True, timeout=120, check=False
        )
        if completed.returncode != 0:
            logs = "".join(
                server.log.read_text()[-2000:]
                for server in (self.primary, self.replica)
                if server.log.exists()
            )
            raise ClusterError(f"{program} failed: {completed.stdout}{completed.stderr}{logs}")

    def start(self) -> None:
        self.run("initdb", "-D", str(self.primary.data), "-U", "postgres", "-A", "trust",
                 "-E", "UTF8", "--no-sync", "--no-instructions")  # fmt: skip
        self.primary.start("wal_level=replica", "max_wal_senders=4")
        # -R writes standby.signal and primary_conninfo: the copy starts as a streaming replica.
        self.run("pg_basebackup", "-h", "127.0.0.1", "-p", str(self.primary.port),
                 "-U", "postgres", "-D", str(self.replica.data), "-R", "-X", "stream",
                 "--no-sync")  # fmt: skip
        self.replica.start("hot_standby=on")

    def stop(self) -> None:
        try:
            for server in (self.replica, self.primary):
                server.stop()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def wait_until(condition: Callable[[], bool], seconds: float = 30, what: str = "") -> None:
    """Poll ``condition`` until it holds; fail after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {seconds:g} s: {what}")
        time.sleep(0.05)
