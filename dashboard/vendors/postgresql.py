"""PostgreSQL through psycopg 3: everything dbhealth does that is PostgreSQL's own."""

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
    bounded = dict(params)
    # libpq/psycopg raise any connect_timeout below 2 s to 2 s; the caller's
    # deadline reports "timeout" earlier, this only ends the straggling thread.
    bounded["connect_timeout"] = whole_seconds(timeout, minimum=2)
    millis = max(1, round(timeout * 1000))
    server_options = f"-c statement_timeout={millis}"
    bounded["options"] = (
        f"{params['options']} {server_options}" if params.get("options") else (server_options)
    )
    # A server that vanishes after the handshake would leave a read hanging:
    # libpq has no read timeout, so let TCP give up instead.
    bounded["tcp_user_timeout"] = millis
    bounded["keepalives"] = 1
    bounded["keepalives_idle"] = whole_seconds(timeout)
    bounded["keepalives_interval"] = 1
    bounded["keepalives_count"] = 2
    bounded.setdefault("application_name", "dbhealth-probe")
    bounded.pop("cursor_factory", None)
    # A ping needs no transaction: no BEGIN before the statement.
    bounded["autocommit"] = True
    return bounded


def connect(params: Params) -> Any:
    import psycopg

    return psycopg.connect(**params)


def server_version(connection: Any) -> str:
    return str(connection.info.parameter_status("server_version") or "")


def is_timeout(error: BaseException, waited_out: bool) -> bool:
    import psycopg.errors

    return isinstance(error, psycopg.errors.ConnectionTimeout | psycopg.errors.QueryCanceled)


def refuses_writes(error: BaseException) -> bool:
    # 25006 read_only_sql_transaction (standby, read-only default), 42501 insufficient_privilege.
    return getattr(error.__cause__, "sqlstate", None) in {"25006", "42501"}


# --- vitals -------------------------------------------------------------------------------------


def _read_only(answer: Answer) -> Reading:
    in_recovery, read_only = answer.first
    if in_recovery:
        return Reading("in recovery (a read-only standby)", True)
    if read_only == "on":
        return Reading("read-only (default_transaction_read_only)", True)
    return Reading("read-write", False)


def _lag(answer: Answer) -> Reading:
    in_recovery, caught_up, seconds, paused = answer.first
    if not in_recovery:
        return Reading("not a replica", None)
    if seconds is None:
        return Reading("replica; no transaction replayed since it started", None)
    note = "; replay paused" if paused else ""
    if caught_up:
        # An idle primary sends nothing to replay: the last replay may be long ago
        # while the replica has everything it received.
        return Reading(
            f"0 s (caught up; last transaction replayed {duration_text(float(seconds))} ago)"
            + note,
            0.0,
        )
    return Reading(f"{duration_text(float(seconds))} behind{note}", round(float(seconds), 3))


VITALS = (
    vital("version", "Server version", single(as_text),
          "SELECT current_setting('server_version')"),
    vital("uptime", "Uptime", single(as_uptime),
          "SELECT EXTRACT(EPOCH FROM now() - pg_postmaster_start_time())"),
    vital("connections", "Connections in use", used_of_limit,
          "SELECT count(*) FILTER (WHERE backend_type = 'client backend'),"
          " current_setting('max_connections')::int FROM pg_stat_activity"),
    vital("size", "Database size", single(as_size),
          "SELECT pg_database_size(current_database())"),
    vital("read_only", "Read-only / recovery", _read_only,
          "SELECT pg_is_in_recovery(), current_setting('default_transaction_read_only')"),
    vital("replication_lag", "Replication lag", _lag,
          "SELECT pg_is_in_recovery(),"
          " pg_last_wal_receive_lsn() IS NOT DISTINCT FROM pg_last_wal_replay_lsn(),"
          " EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()),"
          " CASE WHEN pg_is_in_recovery() THEN pg_is_wal_replay_paused() END"),
)  # fmt: skip

# --- activity and maintenance ---------------------------------------------------------------

# statement_timeout and lock_timeout (ms): a catalog read never queues behind DDL.
BOUND = (
    "SELECT set_config('statement_timeout', %(ms)s, false),"
    " set_config('lock_timeout', %(ms)s, false)",
)

SESSIONS = SessionStatements(
    bound=BOUND,
    sessions=(
        "SELECT pid, COALESCE(usename, ''), COALESCE(application_name, ''),"
        " COALESCE(host(client_addr), 'local'), COALESCE(datname, ''), COALESCE(state, 'unknown'),"
        " EXTRACT(EPOCH FROM clock_timestamp() - query_start)::float8,"
        " EXTRACT(EPOCH FROM clock_timestamp() - xact_start)::float8,"
        " concat_ws(': ', wait_event_type, wait_event), left(query, 4000),"
        " pg_blocking_pids(pid)"
        " FROM pg_stat_activity"
        " WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
        " AND (state IS DISTINCT FROM 'idle' OR cardinality(pg_blocking_pids(pid)) > 0)"
        " ORDER BY xact_start NULLS LAST, query_start NULLS LAST LIMIT 500",
    ),
    counts=(
        "SELECT COALESCE(state, 'unknown'), COALESCE(usename, ''),"
        " COALESCE(application_name, ''), count(*) FROM pg_stat_activity"
        " WHERE backend_type = 'client backend' GROUP BY 1, 2, 3",
    ),
    max_connections="SELECT current_setting('max_connections')::int",
    cancel="SELECT pg_cancel_backend(%s)",
    terminate="SELECT pg_terminate_backend(%s)",
    privilege="pg_read_all_stats (or superuser) to see other users' queries",
)

MAINTENANCE = MaintenanceStatements(
    bound=BOUND,
    privilege="SELECT on the sequences (pg_sequences hides others' last_value)",
    # A sequence is as short as the column it feeds: a bigint sequence on an int4 key
    # still fails at 2^31 - 1. pg_depend links a serial's or identity's sequence to it.
    keys="SELECT COALESCE(a.attrelid::regclass::text, s.schemaname || '.' || s.sequencename),"
         " COALESCE(a.attname, ''), s.last_value,"
         " LEAST(s.max_value, CASE a.atttypid WHEN 'int2'::regtype THEN 32767"
         "  WHEN 'int4'::regtype THEN 2147483647 ELSE s.max_value END)"
         " FROM pg_sequences s"
         " JOIN pg_class c ON c.relname = s.sequencename"
         "  AND c.relnamespace = s.schemaname::regnamespace"
         " LEFT JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = c.oid"
         "  AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')"
         " LEFT JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid"
         " WHERE s.last_value IS NOT NULL AND s.increment_by > 0",
    xid_age="SELECT current_database(), age(datfrozenxid) FROM pg_database"
            " WHERE datname = current_database()",
    invalid_indexes="SELECT i.indexrelid::regclass::text, i.indrelid::regclass::text"
                    " FROM pg_index i WHERE NOT i.indisvalid ORDER BY 1",
    largest="SELECT c.oid::regclass::text,"
            " c.relpages::bigint * current_setting('block_size')::bigint,"
            " GREATEST(c.reltuples, 0)::bigint"
            " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE c.relkind IN ('r', 'm', 'p')"
            " AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
            " AND n.nspname NOT LIKE 'pg_toast%'"
            " ORDER BY c.relpages DESC LIMIT 5",
)  # fmt: skip


VENDOR = Vendor(
    name="postgresql",
    is_file=False,
    bounded=bounded,
    connect=connect,
    # A standby, or default_transaction_read_only = on: both refuse every write.
    ping_sql="SELECT pg_is_in_recovery() OR current_setting('transaction_read_only') = 'on'",
    server_version=server_version,
    read_only=first_is_true,
    is_timeout=is_timeout,
    stop_at_deadline=None,  # the probe's statement_timeout bounds every statement
    # Unset, libpq waits 130 s for a server that does not answer.
    connect_timeout_option="connect_timeout",
    refuses_writes=refuses_writes,
    read_only_means="in recovery or read-only by default",
    migrations_table_sql="SELECT to_regclass('django_migrations') IS NOT NULL",
    vitals=VITALS,
    sessions=SESSIONS,
    file_activity=None,
    maintenance=MAINTENANCE,
)
