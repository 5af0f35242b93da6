"""MariaDB and MySQL through mysqlclient: everything dbhealth does that is theirs alone."""

from __future__ import annotations

from typing import Any

from dashboard.units import duration_text
from dashboard.vendors.base import (
    Answer,
    MaintenanceStatements,
    Params,
    Reading,
    SessionStatements,
    Vendor,
    as_size,
    as_text,
    as_uptime,
    first_is_true,
    single,
    used_of_limit,
    vital,
    whole_seconds,
)

# --- connecting with bounded time -------------------------------------------------------------


def bounded(params: Params, timeout: float) -> Params:
    seconds = whole_seconds(timeout)  # mysqlclient takes whole seconds only
    return {
        **params,
        "connect_timeout": seconds,
        "read_timeout": seconds,
        "write_timeout": seconds,
        # mysqlclient turns autocommit off after connecting (PEP 249), one more round
        # trip; a ping needs no transaction, and the server's default is on.
        "autocommit": True,
    }


def connect(params: Params) -> Any:
    import MySQLdb

    return MySQLdb.connect(**params)


def server_version(connection: Any) -> str:
    return str(connection.get_server_info())


_LOST_CONNECTION = 2013
_ETIMEDOUT = ("system error: 110", "(110)")


def is_timeout(error: BaseException, waited_out: bool) -> bool:
    # 2013 "Lost connection" is both the read_timeout firing and the server going away
    # (a reset is "system error: 104"). The client names errno 110 (ETIMEDOUT) when it
    # can; "during query" names none, and only the time spent tells the two apart.
    code = error.args[0] if error.args and isinstance(error.args[0], int) else None
    text = str(error)
    if any(marker in text for marker in _ETIMEDOUT):
        return True
    return code == _LOST_CONNECTION and "system error" not in text and waited_out


# Access denied to a database, table or column; --read-only; read-only transaction or mode.
_REFUSALS = {1044, 1142, 1143, 1290, 1792, 1836}


def refuses_writes(error: BaseException) -> bool:
    return bool(error.args) and error.args[0] in _REFUSALS


# --- vitals -------------------------------------------------------------------------------------


def _uptime(answer: Answer) -> Reading:
    return as_uptime(answer.first[1])


def _read_only(answer: Answer) -> Reading:
    read_only = bool(int(answer.first[0]))
    return Reading("read-only" if read_only else "read-write", read_only)


def _lag(answer: Answer) -> Reading:
    if not answer.rows:
        return Reading("not a replica", None)
    status = answer.named()
    seconds = status.get("Seconds_Behind_Master", status.get("Seconds_Behind_Source"))
    if seconds is None:
        io = status.get("Slave_IO_Running", status.get("Replica_IO_Running"))
        sql = status.get("Slave_SQL_Running", status.get("Replica_SQL_Running"))
        return Reading(f"replication stopped (IO thread: {io}, SQL thread: {sql})", None)
    return Reading(f"{duration_text(float(seconds))} behind", int(seconds))


VITALS = (
    vital("version", "Server version", single(as_text), "SELECT VERSION()"),
    vital("uptime", "Uptime", _uptime, "SHOW GLOBAL STATUS LIKE 'Uptime'"),
    vital("connections", "Connections in use", used_of_limit,
          "SELECT VARIABLE_VALUE, @@max_connections FROM information_schema.GLOBAL_STATUS"
          " WHERE VARIABLE_NAME = 'THREADS_CONNECTED'",
          "SELECT VARIABLE_VALUE, @@max_connections FROM performance_schema.global_status"
          " WHERE VARIABLE_NAME = 'Threads_connected'"),
    vital("size", "Database size", single(as_size),
          "SELECT COALESCE(SUM(DATA_LENGTH + INDEX_LENGTH), 0) FROM information_schema.TABLES"
          " WHERE TABLE_SCHEMA = DATABASE()"),
    vital("read_only", "Read-only", _read_only, "SELECT @@GLOBAL.read_only"),
    # SHOW REPLICA STATUS: MariaDB 10.5.1+, MySQL 8.0.22+; SHOW SLAVE STATUS before.
    vital("replication_lag", "Replication lag", _lag,
          "SHOW REPLICA STATUS", "SHOW SLAVE STATUS"),
)  # fmt: skip

# --- activity and maintenance ---------------------------------------------------------------

# max_statement_time: MariaDB (seconds); max_execution_time: MySQL (ms, SELECT only).
BOUND = ("SET SESSION max_statement_time = %(seconds)s",
         "SET SESSION max_execution_time = %(ms)s")  # fmt: skip

# MariaDB's PROCESSLIST has TIME_MS; MySQL's only whole seconds in TIME.
_SESSIONS = (
    "SELECT p.ID, COALESCE(p.USER, ''), '', SUBSTRING_INDEX(COALESCE(p.HOST, ''), ':', 1),"
    " COALESCE(p.DB, ''),"
    " CASE WHEN p.COMMAND = 'Query' THEN 'active'"
    "  WHEN p.COMMAND = 'Sleep' AND t.trx_id IS NOT NULL THEN 'idle in transaction'"
    "  WHEN p.COMMAND = 'Sleep' THEN 'idle' ELSE LOWER(p.COMMAND) END,"
    " {seconds}, TIMESTAMPDIFF(MICROSECOND, t.trx_started, NOW()) / 1000000,"
    " COALESCE(p.STATE, ''), LEFT(p.INFO, 4000), NULL"
    " FROM information_schema.PROCESSLIST p"
    " LEFT JOIN information_schema.INNODB_TRX t ON t.trx_mysql_thread_id = p.ID"
    " WHERE p.ID <> CONNECTION_ID() AND p.COMMAND NOT IN ('Daemon', 'Binlog Dump')"
    " AND (p.COMMAND <> 'Sleep' OR t.trx_id IS NOT NULL)"
    " ORDER BY {seconds} DESC LIMIT 500"
)

SESSIONS = SessionStatements(
    bound=BOUND,
    sessions=(
        _SESSIONS.format(seconds="p.TIME_MS / 1000"),
        _SESSIONS.format(seconds="p.TIME"),
    ),
    counts=(
        "SELECT CASE WHEN COMMAND = 'Query' THEN 'active' WHEN COMMAND = 'Sleep' THEN 'idle'"
        " ELSE LOWER(COMMAND) END, COALESCE(USER, ''),"
        " SUBSTRING_INDEX(COALESCE(HOST, ''), ':', 1), COUNT(*)"
        " FROM information_schema.PROCESSLIST"
        " WHERE COMMAND NOT IN ('Daemon', 'Binlog Dump') GROUP BY 1, 2, 3",
    ),
    max_connections="SELECT @@max_connections",
    cancel="KILL QUERY %s",
    terminate="KILL CONNECTION %s",
    lock_waits=(
        # MariaDB and MySQL 5.7; MySQL 8.0 moved lock waits to performance_schema (sys).
        "SELECT r.trx_mysql_thread_id, b.trx_mysql_thread_id"
        " FROM information_schema.INNODB_LOCK_WAITS w"
        " JOIN information_schema.INNODB_TRX r ON r.trx_id = w.requesting_trx_id"
        " JOIN information_schema.INNODB_TRX b ON b.trx_id = w.blocking_trx_id",
        "SELECT waiting_pid, blocking_pid FROM sys.innodb_lock_waits",
    ),
    double_quotes_are_strings=True,
    privilege="PROCESS to see other users' sessions and InnoDB transactions",
)

MAINTENANCE = MaintenanceStatements(
    bound=BOUND,
    privilege="SELECT on the tables (information_schema lists only what the account sees)",
    # AUTO_INCREMENT is the next value to hand out.
    keys="SELECT c.TABLE_NAME, c.COLUMN_NAME, t.AUTO_INCREMENT - 1,"
         " CASE CONCAT(c.DATA_TYPE, IF(c.COLUMN_TYPE LIKE '%unsigned%', ' u', ''))"
         "  WHEN 'tinyint' THEN 127 WHEN 'tinyint u' THEN 255"
         "  WHEN 'smallint' THEN 32767 WHEN 'smallint u' THEN 65535"
         "  WHEN 'mediumint' THEN 8388607 WHEN 'mediumint u' THEN 16777215"
         "  WHEN 'int' THEN 2147483647 WHEN 'int u' THEN 4294967295 END"
         " FROM information_schema.COLUMNS c JOIN information_schema.TABLES t"
         "  ON t.TABLE_SCHEMA = c.TABLE_SCHEMA AND t.TABLE_NAME = c.TABLE_NAME"
         " WHERE c.TABLE_SCHEMA = DATABASE() AND c.EXTRA LIKE '%auto_increment%'"
         " AND c.DATA_TYPE IN ('tinyint', 'smallint', 'mediumint', 'int')"
         " AND t.AUTO_INCREMENT IS NOT NULL",
    largest="SELECT TABLE_NAME, COALESCE(DATA_LENGTH, 0) + COALESCE(INDEX_LENGTH, 0), TABLE_ROWS"
            " FROM information_schema.TABLES"
            " WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'BASE TABLE'"
            " ORDER BY 2 DESC LIMIT 5",
)  # fmt: skip


VENDOR = Vendor(
    name="mysql",
    is_file=False,
    bounded=bounded,
    connect=connect,
    # super_read_only implies read_only, so one variable covers MySQL and MariaDB.
    ping_sql="SELECT @@global.read_only",
    server_version=server_version,
    read_only=first_is_true,
    is_timeout=is_timeout,
    stop_at_deadline=None,  # the probe's read_timeout bounds every statement
    # Unset, the client waits for the kernel's TCP timeout (minutes) on a silent server.
    connect_timeout_option="connect_timeout",
    refuses_writes=refuses_writes,
    read_only_means="read_only is on",
    migrations_table_sql="SELECT COUNT(*) FROM information_schema.TABLES"
    " WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'django_migrations'",
    vitals=VITALS,
    sessions=SESSIONS,
    file_activity=None,
    maintenance=MAINTENANCE,
)
