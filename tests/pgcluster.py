"""PostgreSQL servers a test starts, stops and kills itself, gone after it.

``initdb`` (or ``pg_basebackup -R`` for a streaming replica) in a temporary directory,
every server on a free loopback port with trust authentication. initdb refuses to run
as root, so under root every server program runs as the ``postgres`` user (``runuser``)
and the directory belongs to it. Every wait is bounded.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.conftest import postgres_like
from tests.servers import unused_port

START_SECONDS = 60


class ClusterError(RuntimeError):
    pass


def postgres_bin() -> Path | None:
    """The newest PostgreSQL server binaries installed, if any."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda path: int(Path(path).parts[-3]),
    )
    return Path(found[-1]).parent if found else None


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, parent pid) of a process, or None once it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = text.rsplit(")", 1)[1].split()
    return fields[0], int(fields[1])


class Cluster:
    """A temporary directory, the server binaries, and the servers living in it."""

    def __init__(self, prefix: str = "dbhealth-pg-") -> None:
        bin_dir = postgres_bin()
        if bin_dir is None:
            raise ClusterError("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin")
        self.bin = bin_dir
        self.root = Path(tempfile.mkdtemp(prefix=prefix))
        self.user = pwd.getpwnam("postgres") if os.geteuid() == 0 else None
        if self.user is not None:
            os.chown(self.root, self.user.pw_uid, self.user.pw_gid)
        self.servers: list[Server] = []

    def server(self, name: str) -> Server:
        """A server with its own data directory and port; nothing runs until ``start()``."""
        server = Server(self, name)
        self.servers.append(server)
        return server

    def run(self, program: str, *args: str) -> None:
        command = [str(self.bin / program), *args]
        if self.user is not None:
            command = ["runuser", "-u", "postgres", "--", *command]
        completed = subprocess.run(
            command, cwd=self.root, capture_output=True, text=True, timeout=120, check=False
        )
        if completed.returncode != 0:
            logs = "".join(
                server.log.read_text()[-2000:] for server in self.servers if server.log.exists()
            )
            raise ClusterError(f"{program} failed: {completed.stdout}{completed.stderr}{logs}")

    def stop(self) -> None:
        """Stop every server (the last started first) and remove the directory."""
        try:
            for server in reversed(self.servers):
                server.stop()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


class Server:
    def __init__(self, cluster: Cluster, name: str) -> None:
        self.cluster = cluster
        self.data = cluster.root / name
        self.log = cluster.root / f"{name}.log"
        self.port = unused_port()

    def initdb(self) -> None:
        self.cluster.run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust",
                         "-E", "UTF8", "--no-sync", "--no-instructions")  # fmt: skip

    def start(self, *settings: str) -> None:
        options = " ".join(
            [f"-p {self.port}", f"-k {self.cluster.root}", "-c listen_addresses=127.0.0.1"]
            + [f"-c {setting}" for setting in ("fsync=off", *settings)]
        )
        self.cluster.run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w",
                         "-t", str(START_SECONDS), "-o", options, "start")  # fmt: skip

    def postmaster_pid(self) -> int | None:
        try:
            return int((self.data / "postmaster.pid").read_text().split()[0])
        except (FileNotFoundError, IndexError, ValueError):
            return None

    def processes(self) -> list[int]:
        """The postmaster and its children while it lives; empty once it is gone."""
        postmaster = self.postmaster_pid()
        if postmaster is None or _stat(postmaster) is None:
            return []
        children = [
            int(entry.name)
            for entry in Path("/proc").iterdir()
            if entry.name.isdigit() and (_stat(int(entry.name)) or ("", 0))[1] == postmaster
        ]
        return [postmaster, *children]

    def kill(self) -> None:
        """SIGKILL the postmaster and every backend, as a crash or the OOM killer would."""
        processes = self.processes()
        assert processes, f"the server in {self.data} is not running"
        for pid in processes:
            # A backend may end on its own between the listing and the signal.
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(
            (_stat(pid) or ("Z", 0))[0] != "Z" for pid in processes
        ):
            time.sleep(0.02)
        # Where init does not reap orphans (some containers), the dead postmaster lingers as
        # a zombie and PostgreSQL would take the stale lock file for a live server.
        if _stat(processes[0]) is not None:
            (self.data / "postmaster.pid").unlink()

    def stop(self) -> None:
        # Immediate: the data directory is thrown away next, nothing needs a clean shutdown.
        if self.processes():
            self.cluster.run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w",
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

    def client_sessions(self) -> int:
        """Client sessions on the server, not counting the one asking."""
        return int(
            self.one(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
            )
        )

    def alias_settings(self, **overrides: Any) -> dict[str, Any]:
        return postgres_like(PORT=str(self.port), NAME="postgres", **overrides)


class PrimaryAndReplica(Cluster):
    def __init__(self) -> None:
        super().__init__("dbhealth-replica-")
        self.primary = self.server("primary")
        self.replica = self.server("replica")

    def start(self) -> None:
        self.primary.initdb()
        self.primary.start("wal_level=replica", "max_wal_senders=4")
        # -R writes standby.signal and primary_conninfo: the copy starts as a streaming replica.
        self.run("pg_basebackup", "-h", "127.0.0.1", "-p", str(self.primary.port),
                 "-U", "postgres", "-D", str(self.replica.data), "-R", "-X", "stream",
                 "--no-sync")  # fmt: skip
        self.replica.start("hot_standby=on")


@contextlib.contextmanager
def running(cluster: Any, what: str) -> Iterator[Any]:
    """``cluster`` started for the block and always stopped after, even if it never came up.

    A cluster is anything with ``start()`` and ``stop()`` whose start raises
    ``ClusterError`` when the machine cannot run it.
    """
    try:
        cluster.start()
    except ClusterError as error:
        cluster.stop()
        pytest.fail(f"this machine cannot run {what}: {error}")
    except BaseException:
        cluster.stop()
        raise
    try:
        yield cluster
    finally:
        cluster.stop()


def wait_until(condition: Callable[[], bool], seconds: float = 30, what: str = "") -> None:
    """Poll ``condition`` until it holds; fail after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {seconds:g} s: {what}")
        time.sleep(0.05)
