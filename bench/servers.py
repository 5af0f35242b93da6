"""The servers the benchmark talks to: its own databases, silent listeners, session counts.

Everything here connects with the raw drivers, never through Django, so counting
sessions does not disturb what is being counted.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sqlite3
import threading
from contextlib import closing
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import MySQLdb
import psycopg
from psycopg import sql


class SilentListener:
    """Accepts TCP connections on loopback and never sends a byte: a black-holed server."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(256)
        self.sock.settimeout(0.2)
        self.port = int(self.sock.getsockname()[1])
        self.accepted: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="silent-listener", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.accepted.append(conn)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        for conn in self.accepted:
            conn.close()
        self.sock.close()


class CountingProxy:
    """A loopback TCP relay in front of a server that counts the connections it accepts.

    Stands in for a server-side connection counter where the server has none per
    database (MariaDB's ``Connections`` counts every client of the server).
    """

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(256)
        self.sock.settimeout(0.2)
        self.port = int(self.sock.getsockname()[1])
        self.accepted = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="counting-proxy", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self.sock.accept()
            except OSError:
                continue
            self.accepted += 1
            try:
                upstream = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=5)
            except OSError:
                client.close()
                continue
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while chunk := source.recv(65536):
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)
            source.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()


def closed_port() -> int:
    """A loopback port nothing listens on: connections are refused at once."""
    with closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _server(url: str) -> dict[str, Any]:
    parts = urlsplit(url)
    return {
        "host": parts.hostname or "127.0.0.1",
        "port": parts.port,
        "user": parts.username or "",
        "password": parts.password or "",
        "name": parts.path.strip("/"),
    }


def ensure_databases(postgres_url: str, mysql_url: str, sqlite_path: Path) -> None:
    """Create the benchmark's own databases if they are missing (idempotent)."""
    pg = _server(postgres_url)
    with psycopg.connect(
        host=pg["host"], port=pg["port"], user=pg["user"], password=pg["password"],
        dbname="postgres", autocommit=True,
    ) as conn:  # fmt: skip
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [pg["name"]])
        if exists.fetchone() is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(pg["name"])))
    my = _server(mysql_url)
    mysql = MySQLdb.connect(
        host=my["host"], port=my["port"] or 3306, user=my["user"], password=my["password"]
    )
    try:
        name = my["name"].replace("`", "")
        mysql.cursor().execute(f"CREATE DATABASE IF NOT EXISTS `{name}`")
    finally:
        mysql.close()
    sqlite_path.parent.mkdir(parents=True, exist_ok=True)
    with closing(sqlite3.connect(sqlite_path)) as conn:
        conn.execute("PRAGMA user_version = 1")  # a real database header, not an empty file
        conn.commit()


class SessionCounter:
    """Sessions the servers hold on the benchmark's database (the counter's own excluded)."""

    def __init__(self, postgres_url: str, mysql_url: str) -> None:
        self.pg = _server(postgres_url)
        self.my = _server(mysql_url)

    def postgres(self) -> int:
        with psycopg.connect(
            host=self.pg["host"], port=self.pg["port"], user=self.pg["user"],
            password=self.pg["password"], dbname="postgres",
        ) as conn:  # fmt: skip
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", [self.pg["name"]]
            ).fetchone()
            return int(row[0]) if row else 0

    def postgres_sessions_started(self) -> int:
        """Sessions ever opened on the database (pg_stat_database.sessions, PostgreSQL 14+)."""
        with psycopg.connect(
            host=self.pg["host"], port=self.pg["port"], user=self.pg["user"],
            password=self.pg["password"], dbname="postgres",
        ) as conn:  # fmt: skip
            conn.execute("SELECT pg_stat_clear_snapshot()")
            row = conn.execute(
                "SELECT sessions FROM pg_stat_database WHERE datname = %s", [self.pg["name"]]
            ).fetchone()
            return int(row[0]) if row else 0

    def mysql(self) -> int:
        conn = MySQLdb.connect(
            host=self.my["host"], port=self.my["port"] or 3306, user=self.my["user"],
            password=self.my["password"],
        )  # fmt: skip
        try:
            cursor = conn.cursor()
            cursor.execute(
                "SELECT count(*) FROM information_schema.PROCESSLIST WHERE DB = %s",
                [self.my["name"]],
            )
            return int(cursor.fetchone()[0])
        finally:
            conn.close()

    def mysql_connections_total(self) -> int:
        """The server-wide ``Connections`` counter: every client of the server, not just us."""
        conn = MySQLdb.connect(
            host=self.my["host"], port=self.my["port"] or 3306, user=self.my["user"],
            password=self.my["password"],
        )  # fmt: skip
        try:
            cursor = conn.cursor()
            cursor.execute("SHOW GLOBAL STATUS LIKE 'Connections'")
            return int(cursor.fetchone()[1])
        finally:
            conn.close()


def open_descriptors() -> int:
    """File descriptors this process holds (sockets included)."""
    return len(os.listdir("/proc/self/fd"))
