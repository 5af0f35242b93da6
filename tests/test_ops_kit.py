"""The ops kit shipped in dashboard/ops/: alert rules proven by promtool, a Grafana dashboard,
and the /metrics series both of them read, served from what is cached.

promtool comes from Debian's ``prometheus`` package (``scripts/ensure-system-packages ops``).
"""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from dashboard import vitals
from dashboard.management.commands.dbhealth_ops import OPS_DIR
from tests.pgcluster import PrimaryAndReplica, running, wait_until

RULES = OPS_DIR / "prometheus-rules.yml"
RULE_TESTS = OPS_DIR / "prometheus-rules.test.yml"
DASHBOARD = OPS_DIR / "grafana-dashboard.json"
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def promtool(*args: str, cwd: Path = OPS_DIR) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["promtool", *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


# --- reading the kit's own files ----------------------------------------------------------


def rule_expressions() -> dict[str, str]:
    """``{alert name: expr}`` of the rules file (its own layout: ``expr:`` inline or ``|``)."""
    lines = RULES.read_text().splitlines()
    found: dict[str, str] = {}
    alert = ""
    for number, line in enumerate(lines):
        if named := re.match(r"\s*- alert: (\S+)", line):
            alert = named.group(1)
        elif keyed := re.match(r"(\s*)expr: ?(.*)", line):
            indent, rest = len(keyed.group(1)), keyed.group(2)
            if rest != "|":
                found[alert] = rest
                continue
            block = []
            for following in lines[number + 1 :]:
                if following.strip() and len(following) - len(following.lstrip()) <= indent:
                    break
                block.append(following.strip())
            found[alert] = " ".join(part for part in block if part)
    return found


def dashboard_expressions() -> list[str]:
    board = json.loads(DASHBOARD.read_text())
    panels = [target["expr"] for panel in board["panels"] for target in panel["targets"]]
    variables = [variable["definition"] for variable in board["templating"]["list"]]
    return panels + variables


def metric_names(expression: str) -> set[str]:
    return set(re.findall(r"\b(?:dbhealth|db_client)_[A-Za-z0-9_]*[A-Za-z0-9]", expression))


def as_plain_promql(expression: str) -> str:
    """A Grafana expression with its variables filled in as Grafana would."""
    return expression.replace("$__rate_interval", "5m").replace("$alias", ".*")


# --- promtool -------------------------------------------------------------------------------


def test_promtool_accepts_the_rules() -> None:
    checked = promtool("check", "rules", RULES.name)

    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(rule_expressions())} rules found" in checked.stdout


def test_every_alert_fires_and_stays_silent_in_promtools_unit_tests() -> None:
    tested = promtool("test", "rules", RULE_TESTS.name)

    assert tested.returncode == 0, tested.stdout + tested.stderr
    cases = re.findall(r"alertname: (\S+)\n\s+exp_alerts:( \[\])?", RULE_TESTS.read_text())
    fires = {alert for alert, empty in cases if not empty}
    silent = {alert for alert, empty in cases if empty}
    alerts = set(rule_expressions())
    assert alerts == {
        "DBHealthCriticalAliasDown",
        "DBHealthAliasDown",
        "DBHealthLatencyHigh",
        "DBHealthAliasFlapping",
        "DBHealthMigrationsBehind",
        "DBHealthReplicationLagHigh",
        "DBHealthMaintenanceDanger",
        "DBHealthPoolStarved",
        "DBHealthConnectionsNearLimit",
        "DBHealthIdleInTransactionTooLong",
    }
    assert fires == alerts and silent == alerts


def test_a_broken_rule_fails_its_unit_test(tmp_path: Path) -> None:
    (tmp_path / RULE_TESTS.name).write_text(RULE_TESTS.read_text())
    (tmp_path / RULES.name).write_text(RULES.read_text().replace("for: 1m", "for: 5m"))

    tested = promtool("test", "rules", RULE_TESTS.name, cwd=tmp_path)

    assert tested.returncode != 0
    assert "DBHealthCriticalAliasDown" in tested.stdout + tested.stderr


def test_every_dashboard_expression_is_valid_promql(tmp_path: Path) -> None:
    # promtool parses recording rules like alerts: one per panel query checks its syntax.
    records = "\n".join(
        f"      - record: dbhealth:panel_{number}\n        expr: {json.dumps(as_plain_promql(e))}"
        for number, e in enumerate(dashboard_expressions())
        if not e.startswith("label_values(")
    )
    (tmp_path / "panels.yml").write_text(f"groups:\n  - name: panels\n    rules:\n{records}\n")

    checked = promtool("check", "rules", "panels.yml", cwd=tmp_path)

    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_dashboard_imports_with_a_datasource_input_and_an_alias_variable() -> None:
    board = json.loads(DASHBOARD.read_text())

    assert [entry["name"] for entry in board["__inputs"]] == ["DS_PROMETHEUS"]
    assert {panel["datasource"]["uid"] for panel in board["panels"]} == {"${DS_PROMETHEUS}"}
    assert [variable["name"] for variable in board["templating"]["list"]] == ["alias"]
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids))


# --- the series the kit reads ----------------------------------------------------------------


@pytest.fixture
def bearer(settings: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {settings.DBHEALTH['TOKEN']}"}


def scrape(client: Client, bearer: dict[str, str]) -> dict[str, Any]:
    response = client.get("/metrics", headers=bearer)
    assert response.status_code == 200
    return {family.name: family for family in text_string_to_metric_families(response.text)}


def served_names(families: dict[str, Any]) -> set[str]:
    """Every series name a PromQL expression may use on this scrape."""
    names = set()
    for family in families.values():
        names.add(family.name)
        names.update(sample.name for sample in family.samples)
        if family.type == "histogram":
            names.update(family.name + suffix for suffix in HISTOGRAM_SUFFIXES)
        if family.type == "counter":
            names.add(family.name + "_total")
    return names


def values(families: dict[str, Any], name: str) -> dict[str, float]:
    return {sample.labels["alias"]: sample.value for sample in families[name].samples}


def test_every_metric_the_rules_and_the_dashboard_use_is_in_the_scrape(
    client: Client, bearer: dict[str, str]
) -> None:
    used = {
        name
        for expression in [*rule_expressions().values(), *dashboard_expressions()]
        for name in metric_names(expression)
    }

    served = served_names(scrape(client, bearer))

    assert used >= {
        "dbhealth_up",
        "dbhealth_critical",
        "dbhealth_warn_latency_seconds",
        "dbhealth_latency_seconds_sum",
        "dbhealth_latency_seconds_count",
        "dbhealth_latency_seconds_bucket",
        "dbhealth_probe_failures_total",
        "dbhealth_migrations_unapplied",
        "dbhealth_replication_lag_seconds",
        "dbhealth_maintenance_dangers",
        "dbhealth_verdict",
        "dbhealth_flapping",
        "db_client_connection_count",
        "db_client_connection_pending_requests",
        "dbhealth_connections_used_ratio",
        "dbhealth_longest_idle_in_transaction_seconds",
    }
    assert sorted(used - served) == []


def test_critical_aliases_and_the_warning_threshold_come_from_the_settings(
    client: Client, bearer: dict[str, str], settings: Any
) -> None:
    settings.DBHEALTH = {**settings.DBHEALTH, "CRITICAL_ALIASES": ["second_db"], "WARN_MS": 250}

    families = scrape(client, bearer)

    assert values(families, "dbhealth_critical") == {"default": 0, "second_db": 1, "local": 0}
    (threshold,) = families["dbhealth_warn_latency_seconds"].samples
    assert threshold.value == 0.25


@pytest.fixture
def never_migrated(tmp_path: Path, add_alias: Any) -> str:
    path = tmp_path / "fresh.sqlite3"
    sqlite3.connect(path).close()
    return add_alias("fresh", ENGINE="django.db.backends.sqlite3", NAME=str(path))


def test_unapplied_migrations_are_served_once_the_page_has_checked_them(
    client: Client, bearer: dict[str, str], staff_client: Client, never_migrated: str
) -> None:
    before = scrape(client, bearer)
    assert staff_client.get("/admin/db-health/").status_code == 200

    after = scrape(client, bearer)

    assert values(before, "dbhealth_migrations_unapplied") == {}  # a scrape checks nothing
    unapplied = values(after, "dbhealth_migrations_unapplied")
    assert unapplied["default"] == unapplied["second_db"] == 0
    assert unapplied[never_migrated] > 10  # auth, admin, sessions, ... all still to apply


@pytest.fixture(scope="module")
def replicated() -> Iterator[PrimaryAndReplica]:
    with running(PrimaryAndReplica(), "a PostgreSQL replica") as cluster:
        yield cluster


def test_replication_lag_is_served_for_a_replica_whose_vitals_were_read(
    client: Client, bearer: dict[str, str], replicated: PrimaryAndReplica, add_alias: Any
) -> None:
    primary = add_alias("primary", **replicated.primary.alias_settings())
    replica = add_alias("replica", **replicated.replica.alias_settings())
    with replicated.primary.connect() as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS beat (at timestamptz)")
        conn.execute("INSERT INTO beat VALUES (now())")
    wait_until(
        lambda: replicated.replica.one("SELECT pg_last_xact_replay_timestamp()") is not None,
        what="the replica replays the first transaction",
    )
    before = scrape(client, bearer)
    vitals.read(primary)
    vitals.read(replica)

    after = scrape(client, bearer)

    assert values(before, "dbhealth_replication_lag_seconds") == {}
    lag = values(after, "dbhealth_replication_lag_seconds")
    assert list(lag) == [replica]  # a primary has no lag to report
    assert lag[replica] >= 0


def test_the_command_prints_the_kit_and_says_where_it_is(
    capsys: pytest.CaptureFixture[str],
) -> None:
    call_command("dbhealth_ops", "--rules")
    rules = capsys.readouterr().out
    call_command("dbhealth_ops", "--dashboard")
    board = capsys.readouterr().out
    call_command("dbhealth_ops")
    listing = capsys.readouterr().out

    assert rules == RULES.read_text()
    assert json.loads(board)["uid"] == "dbhealth-aliases"
    for path in (RULES, RULE_TESTS, DASHBOARD):
        assert str(path) in listing and path.is_file()
