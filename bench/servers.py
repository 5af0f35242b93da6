"""The servers the benchmark talks to: its own databases, a counting relay, session counts.

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

from tests.servers import Acceptor


class CountingProxy(Acceptor):
    """A loopback TCP relay in front of a server that counts the connections it accepts.

    Stands in for a server-side connection counter where the server has none per
    database (MariaDB's ``Connections`` counts every client of the server).
    """

    thread_name = "counting-proxy"

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.accepted = 0
        super().__init__()

    def handle(self, client: socket.socket) -> None:
        self.accepted += 1
        try:
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=5)
        except OSError:
            client.close()
            return
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
        return self._postgres_count("SELECT count(*) FROM pg_stat_activity WHERE datname = %s")

    def postgres_sessions_started(self) -> int:
        """Sessions ever opened on the database (pg_stat_database.sessions, PostgreSQL 14+)."""
        return self._postgres_count(
            "SELECT sessions FROM pg_stat_database WHERE datname = %s", clear_snapshot=True
        )

    def mysql(self) -> int:
        row = self._mysql_row(
            "SELECT count(*) FROM information_schema.PROCESSLIST WHERE DB = %s", [self.my["name"]]
        )
        return int(row[0])

    def mysql_connections_total(self) -> int:
        """The server-wide ``Connections`` counter: every client of the server, not just us."""
        return int(self._mysql_row("SHOW GLOBAL STATUS LIKE 'Connections'")[1])

    def _postgres_count(self, query: str, *, clear_snapshot: bool = False) -> int:
        """``query`` about the benchmark's database, asked from the ``postgres`` database."""
        with psycopg.connect(
            host=self.pg["host"], port=self.pg["port"], user=self.pg["user"],
            password=self.pg["password"], dbname="postgres",
        ) as conn:  # fmt: skip
            if clear_snapshot:
                conn.execute("SELECT pg_stat_clear_snapshot()")
            row = conn.execute(query, [self.pg["name"]]).fetchone()
            return int(row[0]) if row else 0

    def _mysql_row(self, query: str, params: list[str] | None = None) -> tuple[Any, ...]:
        conn = MySQLdb.connect(
            host=self.my["host"], port=self.my["port"] or 3306, user=self.my["user"],
            password=self.my["password"],
        )  # fmt: skip
        try:
            cursor = conn.cursor()
            cursor.execute(query, params)
            return tuple(cursor.fetchone())
        finally:
            conn.close()


def open_descriptors() -> int:
    """File descriptors this process holds (sockets included)."""
    return len(os.listdir("/proc/self/fd"))
