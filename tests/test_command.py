from __future__ import annotations

import io
import json
import os
import pty
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import connections

from tests.conftest import SLACK_SECONDS, postgres_like

REPO = Path(__file__).resolve().parent.parent
SERVERS = ["--alias", "default", "--alias", "second_db"]


def _url(alias: str, scheme: str, port: int | None) -> str:
    db = connections.settings[alias]
    password = f":{db['PASSWORD']}" if db["PASSWORD"] else ""
    return f"{scheme}://{db['USER']}{password}@{db['HOST']}:{port or db['PORT']}/{db['NAME']}"


def servers_env(*, postgres_port: int | None = None, mysql_port: int | None = None) -> dict:
    """Environment for a ``tests.settings`` subprocess that probes this run's test databases."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DBHEALTH_TEST_POSTGRES_URL": _url("default", "postgres", postgres_port),
        "DBHEALTH_TEST_MYSQL_URL": _url("second_db", "mysql", mysql_port),
    }


def run(*args: str) -> tuple[int, str]:
    """``manage.py dbhealth`` in this process: (exit status, stdout)."""
    out = io.StringIO()
    try:
        call_command("dbhealth", *args, stdout=out)
    except SystemExit as exit:
        return int(exit.code or 0), out.getvalue()
    return 0, out.getvalue()


def dbhealth(*args: str, env: dict | None = None, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "dbhealth", *args],
        cwd=REPO,
        env=env or servers_env(),
        capture_output=True,
        text=True,
        timeout=60,
        **kwargs,
    )


@pytest.fixture
def dead(add_alias, closed_port, canary) -> str:
    return add_alias("dead", **postgres_like(PORT=str(closed_port), PASSWORD=canary))


def test_every_alias_up_is_ok_with_an_aligned_table() -> None:
    status, out = run()

    lines = out.splitlines()
    assert status == 0
    assert lines[0].split() == [
        "ALIAS", "STATUS", "VENDOR", "WHERE", "DATABASE", "CONNECT", "QUERY", "VERDICT", "HELD",
        "VERSION", "ERROR",
    ]  # fmt: skip
    rows = {line.split()[0]: line for line in lines[1:4]}
    assert set(rows) == {"default*", "second_db", "local"}
    for column in ("STATUS", "VENDOR", "WHERE", "CONNECT"):
        offset = lines[0].index(column)
        assert all(row[offset - 1] == " " and row[offset] != " " for row in rows.values())
    assert "127.0.0.1:5432" in rows["default*"] and "127.0.0.1:3306" in rows["second_db"]
    assert lines[-1].startswith("OK: 3 up of 3; slowest ")
    assert "\x1b[" not in out


def test_a_non_critical_alias_down_is_a_warning(dead, canary) -> None:
    status, out = run()

    assert status == 1
    assert re.search(r"^dead\s+down\s+postgresql\s+127\.0\.0\.1:\d+", out, re.M)
    assert out.splitlines()[-1].startswith("WARNING: dead down; 3 up, 1 down of 4")
    assert canary not in out


def test_an_alias_slower_than_warn_ms_is_a_warning(settings) -> None:
    settings.DBHEALTH = {**settings.DBHEALTH, "WARN_MS": 0.001}

    status, out = run("--alias", "default")

    assert status == 1
    assert out.splitlines()[-1].startswith("WARNING: default slow (")


def test_a_critical_alias_down_is_critical(dead, settings) -> None:
    settings.DBHEALTH = {**settings.DBHEALTH, "CRITICAL_ALIASES": ["default", dead]}

    status, out = run()

    assert status == 2
    assert out.splitlines()[-1].startswith("CRITICAL: dead down (critical); ")


def test_an_unknown_alias_is_unknown() -> None:
    with pytest.raises(CommandError, match="Unknown database alias 'nope'") as error:
        call_command("dbhealth", "--alias", "default", "--alias", "nope")

    assert error.value.returncode == 3


@pytest.mark.parametrize(
    "args",
    [
        ["--timeout", "0"],
        ["--timeout", "40000"],  # beyond what TCP keepalive options take, like the setting
        ["--timeout", "inf"],
        ["--watch", "soon"],
        ["--json", "--nagios"],
    ],
)
def test_bad_arguments_are_unknown(args) -> None:
    with pytest.raises(CommandError) as error:
        call_command("dbhealth", *args)

    assert error.value.returncode == 3


def test_a_timeout_beyond_the_settings_range_is_refused_in_one_line() -> None:
    done = dbhealth("--timeout", "40000")

    assert done.returncode == 3
    assert "must be between 0.1 and 300 seconds" in done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""


def test_alias_is_repeatable_and_keeps_settings_order() -> None:
    status, out = run("--alias", "local", "--alias", "second_db")

    assert status == 0
    assert [line.split()[0] for line in out.splitlines()[1:3]] == ["second_db", "local"]
    assert "default" not in out


def test_json_is_the_detailed_health_document(dead, canary) -> None:
    status, out = run("--json")

    document = json.loads(out)
    assert status == 1
    assert document["status"] == "warn"
    assert list(document["checks"]) == [
        "default:responseTime", "second_db:responseTime", "local:responseTime",
        "dead:responseTime",
    ]  # fmt: skip
    (up,) = document["checks"]["default:responseTime"]
    assert up["status"] == "pass" and up["observedUnit"] == "ms" and up["observedValue"] > 0
    assert (up["vendor"], up["host"], up["port"]) == ("postgresql", "127.0.0.1", 5432)
    assert up["version"] and up["error"] is None
    (down,) = document["checks"]["dead:responseTime"]
    assert down["status"] == "warn" and down["observedValue"] is None
    assert "refused" in down["error"].lower()
    assert canary not in out


def test_nagios_prints_one_line_with_perfdata(dead) -> None:
    status, out = run("--nagios")

    (line,) = out.splitlines()
    assert status == 1
    assert line.startswith("DBHEALTH WARNING - dead down; 3 up, 1 down of 4; slowest ")
    text, perfdata = line.split(" | ")
    fields = perfdata.split(" ")
    assert [field.split("=")[0] for field in fields] == [
        "'default_ms'", "'second_db_ms'", "'local_ms'", "'dead_ms'",
    ]  # fmt: skip
    assert re.fullmatch(r"'default_ms'=\d+\.\d{3}ms;1000;2000;0;", fields[0])
    assert fields[3] == "'dead_ms'=U;1000;2000;0;"


def test_timeout_bounds_the_round(add_alias, silent_port, no_stragglers) -> None:
    add_alias("silent", **postgres_like(PORT=str(silent_port)))

    started = time.monotonic()
    status, out = run("--alias", "default", "--alias", "silent", "--timeout", "0.5", "--json")
    elapsed = time.monotonic() - started

    assert status == 1
    assert json.loads(out)["checks"]["silent:responseTime"][0]["probe"] == "timeout"
    assert elapsed < 0.5 + SLACK_SECONDS


def test_the_command_bypasses_the_cache() -> None:
    first = json.loads(run("--json", "--alias", "second_db")[1])
    second = json.loads(run("--json", "--alias", "second_db")[1])

    times = [doc["checks"]["second_db:responseTime"][0]["time"] for doc in (first, second)]
    assert times[0] != times[1]


# --- as operators run it: a separate process and its exit status -----------------------


@pytest.mark.parametrize(
    ("dead_server", "expected", "last_line"),
    [(None, 0, "OK: 2 up of 2"), ("mysql", 1, "WARNING: second_db down"),
     ("postgres", 2, "CRITICAL: default down (critical)")],
)  # fmt: skip
def test_exit_status_of_a_real_run(dead_server, expected, last_line, closed_port, canary) -> None:
    env = servers_env(**({f"{dead_server}_port": closed_port} if dead_server else {}))

    done = dbhealth(*SERVERS, env=env)

    assert done.returncode == expected, done.stderr
    assert done.stdout.splitlines()[-1].startswith(last_line)
    assert canary not in done.stdout + done.stderr


def test_bad_arguments_exit_unknown_with_usage() -> None:
    done = dbhealth("--timeout", "-1")

    assert done.returncode == 3
    assert "usage: manage.py dbhealth" in done.stderr
    assert "must be a number of seconds above 0" in done.stderr


def test_unknown_alias_exits_unknown() -> None:
    done = dbhealth("--alias", "nope")

    assert done.returncode == 3
    assert "Unknown database alias 'nope'" in done.stderr


def test_a_settings_error_exits_unknown() -> None:
    done = dbhealth(env={**servers_env(), "DBHEALTH_TIMEOUT": "soon"})

    assert done.returncode == 3
    assert "Configuration error: DBHEALTH_TIMEOUT must be a number" in done.stderr


def test_colour_only_on_a_terminal() -> None:
    controller, terminal = pty.openpty()
    try:
        done = subprocess.run(
            [sys.executable, "manage.py", "dbhealth", *SERVERS],
            cwd=REPO,
            env=servers_env(),
            stdout=terminal,
            stderr=subprocess.PIPE,
            timeout=60,
        )
        os.close(terminal)
        terminal = -1
        shown = b""
        while chunk := _read_pty(controller):
            shown += chunk
    finally:
        if terminal != -1:
            os.close(terminal)
        os.close(controller)
    piped = dbhealth(*SERVERS)

    assert done.returncode == 0
    assert b"\x1b[" in shown and b"OK: 2 up of 2" in shown
    assert piped.returncode == 0 and "\x1b[" not in piped.stdout


def _read_pty(fd: int) -> bytes:
    try:
        return os.read(fd, 65536)
    except OSError:  # EIO: the terminal side is closed and everything was read
        return b""


@pytest.mark.parametrize(("dead_server", "expected"), [(None, 0), ("mysql", 1)])
def test_watch_redraws_until_sigint_and_exits_with_the_last_rounds_status(
    dead_server, expected, closed_port
) -> None:
    env = servers_env(**({f"{dead_server}_port": closed_port} if dead_server else {}))
    watcher = subprocess.Popen(
        [sys.executable, "manage.py", "dbhealth", *SERVERS, "--watch", "0.2"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    assert watcher.stdout is not None
    reader = threading.Thread(target=lambda: [lines.put(line) for line in watcher.stdout])
    reader.start()
    try:
        verdicts = []
        deadline = time.monotonic() + 30
        while len(verdicts) < 2 and time.monotonic() < deadline:
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            if line.startswith(("OK:", "WARNING:", "CRITICAL:")):
                verdicts.append(line)
        watcher.send_signal(signal.SIGINT)
        watcher.wait(timeout=15)
    finally:
        if watcher.poll() is None:
            watcher.kill()
            watcher.wait()
        reader.join(timeout=5)
    assert watcher.stderr is not None
    stderr = watcher.stderr.read()
    watcher.stderr.close()
    watcher.stdout.close()

    assert len(verdicts) == 2  # it redrew: a second round followed the first
    assert watcher.returncode == expected
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr


def test_ctrl_c_during_a_round_ends_the_watch_when_that_round_has_answered(
    silent_listener,
) -> None:
    # MariaDB's port black-holed: each round waits out its 3 s timeout on that alias.
    env = servers_env(mysql_port=silent_listener.port)
    watcher = subprocess.Popen(
        [sys.executable, "manage.py", "dbhealth", *SERVERS, "--watch", "0.2", "--timeout", "3"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # The second round is in progress once the silent server took its second connection.
        deadline = time.monotonic() + 30
        while len(silent_listener.accepted) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(silent_listener.accepted) >= 2, "the second round never dialled"
        watcher.send_signal(signal.SIGINT)
        stdout, stderr = watcher.communicate(timeout=20)
    finally:
        if watcher.poll() is None:
            watcher.kill()
            watcher.communicate()

    verdicts = [line for line in stdout.splitlines() if line.startswith(("OK:", "WARNING:"))]
    # The interrupted round still answered (its verdict names the silent alias) before exit.
    assert len(verdicts) == 2 and "second_db" in verdicts[1]
    assert watcher.returncode == 1
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr
