"""MariaDB servers a test starts and stops itself, gone after it: a primary and its replica.

``mariadb-install-db`` in a temporary directory (root with an empty password, as on a
fresh install), each server on a free loopback port with its own socket and pid file and
no option files read. The server refuses to run as root, so under root it runs as the
``mysql`` user and the directory belongs to it. Every wait is bounded.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import MySQLdb

from tests.conftest import mysql_like
from tests.pgcluster import ClusterError, wait_until
from tests.servers import unused_port

START_SECONDS = 60
STOP_SECONDS = 30


class Server:
    def __init__(self, root: Path, name: str, server_id: int, *options: str) -> None:
        self.root = root
        self.data = root / name
        self.log = root / f"{name}.err"
        self.port = unused_port()
        self.options = (f"--server-id={server_id}", *options)
        self.process: subprocess.Popen[bytes] | None = None

    def _user(self) -> list[str]:
        return ["--user=mysql"] if os.geteuid() == 0 else []

    def install(self) -> None:
        try:
            completed = subprocess.run(
                ["mariadb-install-db", "--no-defaults", f"--datadir={self.data}",
                 "--auth-root-authentication-method=normal", "--skip-test-db",
                 *self._user()],
                capture_output=True, text=True, timeout=120, check=False,
            )  # fmt: skip
        except (OSError, subprocess.TimeoutExpired) as error:
            raise ClusterError(f"mariadb-install-db: {error}") from error
        if completed.returncode != 0:
            raise ClusterError(f"mariadb-install-db failed: {completed.stdout}{completed.stderr}")

    def start(self) -> None:
        try:
            self.process = subprocess.Popen(
                ["mariadbd", "--no-defaults", f"--datadir={self.data}", f"--port={self.port}",
                 "--bind-address=127.0.0.1", f"--socket={self.root / (self.data.name + '.sock')}",
                 f"--pid-file={self.root / (self.data.name + '.pid')}",
                 f"--log-error={self.log}", "--innodb-buffer-pool-size=32M",
                 "--skip-innodb-doublewrite", "--innodb-flush-log-at-trx-commit=0",
                 *self._user(), *self.options],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
        except OSError as error:
            raise ClusterError(f"mariadbd: {error}") from error
        deadline = time.monotonic() + START_SECONDS
        while True:
            try:
                self.connect().close()
                return
            except MySQLdb.OperationalError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise ClusterError(f"mariadbd did not start: {self.log_tail()}") from None
                time.sleep(0.1)

    def log_tail(self) -> str:
        return self.log.read_text()[-2000:] if self.log.exists() else "(no log)"

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            # The data directory is thrown away next: a hung shutdown is not worth waiting for.
            self.process.kill()
            self.process.wait(timeout=STOP_SECONDS)

    def connect(self) -> Any:
        return MySQLdb.connect(host="127.0.0.1", port=self.port, user="root", passwd="",
                               connect_timeout=5, autocommit=True)  # fmt: skip

    def run(self, *statements: str) -> Any:
        """Run the statements in one session; the first column of the last one's first row."""
        conn = self.connect()
        try:
            cursor = conn.cursor()
            for statement in statements:
                cursor.execute(statement)
            row = cursor.fetchone() if cursor.description else None
            return row[0] if row else None
        finally:
            conn.close()

    def replica_status(self) -> dict[str, Any]:
        conn = self.connect()
        try:
            cursor = conn.cursor(MySQLdb.cursors.DictCursor)
            cursor.execute("SHOW SLAVE STATUS")
            return dict(cursor.fetchone() or {})
        finally:
            conn.close()

    def alias_settings(self, **overrides: Any) -> dict[str, Any]:
        return mysql_like(HOST="127.0.0.1", PORT=str(self.port), USER="root", PASSWORD="",
                          NAME="mysql", **overrides)  # fmt: skip


class PrimaryAndReplica:
    """A binlogging primary and a read-only replica following it by GTID."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="dbhealth-mariadb-"))
        if os.geteuid() == 0:
            user = pwd.getpwnam("mysql")
            os.chown(self.root, user.pw_uid, user.pw_gid)
        self.primary = Server(self.root, "primary", 1, "--log-bin=primary-bin")
        self.replica = Server(self.root, "replica", 2, "--read-only", "--relay-log=replica-relay")

    def start(self) -> None:
        for server in (self.primary, self.replica):
            server.install()
            server.start()
        self.replica.run(
            f"CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT={self.primary.port},"
            " MASTER_USER='root', MASTER_PASSWORD='', MASTER_CONNECT_RETRY=1,"
            " MASTER_USE_GTID=slave_pos",
            "START SLAVE",
        )
        wait_until(
            lambda: self.replica_running(),
            what=f"the replica connects to the primary: {self.replica.log_tail()}",
        )

    def replica_running(self) -> bool:
        status = self.replica.replica_status()
        return status.get("Slave_IO_Running") == "Yes" and status.get("Slave_SQL_Running") == "Yes"

    def caught_up(self) -> bool:
        """The replica has applied everything the primary has written."""
        position = self.primary.run("SELECT @@gtid_binlog_pos")
        return bool(self.replica.run(f"SELECT MASTER_GTID_WAIT('{position}', 0) = 0"))

    def stop(self) -> None:
        """Stop both servers (the replica first) and remove the directory."""
        try:
            for server in (self.replica, self.primary):
                with contextlib.suppress(Exception):
                    server.stop()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
