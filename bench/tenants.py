"""A database-per-tenant site for row 7: hundreds of real databases, always removed after.

The databases live on PostgreSQL and MariaDB servers the benchmark starts for itself
(as the tests start their throwaway servers), with the connection slots of a default
install: PostgreSQL 100 (3 of them reserved for superusers), MariaDB 151. A probe round
that takes every slot then takes none from the machine's shared servers, which other
test runs use at the same moment. The site connects as an ordinary user, as a site
would, so the superuser slots stay out of its reach.

    with tenant_servers(200) as site:   # 1 + 200 PostgreSQL and 200 MariaDB databases
        site.postgres_port, site.postgres_names, site.mariadb_port, site.mariadb_names

Creation runs over a few connections in parallel. On leaving the block, normally or by
an exception (Ctrl-C included), the databases are dropped and the servers stopped and
their directories removed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pwd
import shutil
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import psycopg

from tests.mariadbcluster import Server as MariaDBServer
from tests.pgcluster import Cluster, ClusterError

PREFIX = "dbhb_t"
MAIN_DATABASE = "dbhb_main"
SITE_USER = "dbhb_app"
# Connections that create (and drop) the databases; the servers have slots to spare.
WORKERS = 4

logger = logging.getLogger(__name__)

__all__ = ["ClusterError", "TenantServers", "tenant_servers"]


@dataclass(frozen=True)
class TenantServers:
    postgres_port: int
    mariadb_port: int
    # The site's main database first, then one per tenant.
    postgres_names: list[str]
    mariadb_names: list[str]
    user: str = SITE_USER


def tenant_names(count: int) -> list[str]:
    return [f"{PREFIX}{number:03d}" for number in range(count)]


def _in_parallel(work: Callable[[list[str]], None], names: list[str]) -> None:
    shares = [names[start::WORKERS] for start in range(WORKERS)]
    with ThreadPoolExecutor(WORKERS, thread_name_prefix="bench-tenants") as pool:
        for done in pool.map(work, [share for share in shares if share]):
            assert done is None


def _postgres_statements(port: int, statements: list[str]) -> None:
    with psycopg.connect(
        host="127.0.0.1", port=port, user="postgres", dbname="postgres",
        autocommit=True, connect_timeout=5,
    ) as conn:  # fmt: skip
        for statement in statements:
            conn.execute(statement.encode())


def _create_postgres(port: int, names: list[str]) -> None:
    _postgres_statements(port, [f"CREATE ROLE {SITE_USER} LOGIN"])
    # FILE_COPY copies the template's files instead of writing them all to the WAL:
    # seconds for hundreds of databases instead of tens of seconds.
    _in_parallel(
        lambda share: _postgres_statements(
            port, [f'CREATE DATABASE "{name}" STRATEGY FILE_COPY' for name in share]
        ),
        names,
    )


def _drop_postgres(port: int, names: list[str]) -> None:
    _in_parallel(
        lambda share: _postgres_statements(
            port, [f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)' for name in share]
        ),
        names,
    )


def _create_mariadb(server: MariaDBServer, names: list[str]) -> None:
    # 127.0.0.1 resolves to "localhost" unless name resolution is off: grant both.
    accounts = [f"'{SITE_USER}'@'{host}'" for host in ("localhost", "%")]
    server.run(
        *(f"CREATE USER {account}" for account in accounts),
        *(f"GRANT ALL ON `{PREFIX}%`.* TO {account}" for account in accounts),
    )
    _in_parallel(lambda share: server.run(*(f"CREATE DATABASE `{n}`" for n in share)), names)


def _drop_mariadb(server: MariaDBServer, names: list[str]) -> None:
    _in_parallel(
        lambda share: server.run(*(f"DROP DATABASE IF EXISTS `{n}`" for n in share)), names
    )


def _mariadb_root() -> Path:
    root = Path(tempfile.mkdtemp(prefix="dbhealth-bench-tenants-mariadb-"))
    if os.geteuid() == 0:
        # mariadbd refuses to run as root and runs as "mysql", which must own its files.
        user = pwd.getpwnam("mysql")
        os.chown(root, user.pw_uid, user.pw_gid)
    return root


def _cleanup(step: str, action: Callable[[], None]) -> None:
    """One step of tearing down; a failing step must not keep the next from running."""
    try:
        action()
    except Exception as error:
        logger.warning("tenant servers: %s failed: %s", step, error)


@contextlib.contextmanager
def tenant_servers(count: int) -> Iterator[TenantServers]:
    """``count`` tenant databases on each server (plus the main one on PostgreSQL)."""
    postgres_names = [MAIN_DATABASE, *tenant_names(count)]
    mariadb_names = tenant_names(count)
    cluster = Cluster("dbhealth-bench-tenants-pg-")
    postgres = cluster.server("tenants")
    mariadb_root = _mariadb_root()
    mariadb = MariaDBServer(mariadb_root, "tenants", 1, "--max-connections=151")
    created: list[Callable[[], None]] = []
    try:
        postgres.initdb()
        postgres.start(
            "max_connections=100", "superuser_reserved_connections=3", "full_page_writes=off"
        )
        mariadb.install()
        mariadb.start()
        created.append(lambda: _drop_postgres(postgres.port, postgres_names))
        _create_postgres(postgres.port, postgres_names)
        created.append(lambda: _drop_mariadb(mariadb, mariadb_names))
        _create_mariadb(mariadb, mariadb_names)
        yield TenantServers(postgres.port, mariadb.port, postgres_names, mariadb_names)
    finally:
        for drop in created:
            _cleanup("dropping the tenant databases", drop)
        _cleanup("stopping MariaDB", mariadb.stop)
        _cleanup("removing MariaDB's directory", lambda: shutil.rmtree(mariadb_root))
        _cleanup("stopping PostgreSQL", cluster.stop)
