"""The page model for many aliases, from literal results: no server needed."""

from __future__ import annotations

from typing import Any

import pytest

from dashboard import overview
from dashboard.drift import Drift
from dashboard.overview import Filter
from dashboard.report import from_results
from dashboard.result import ProbeResult

pytestmark = pytest.mark.django_db(databases=[])


def result(alias: str, status: str = "up", **values: Any) -> ProbeResult:
    defaults: dict[str, Any] = {
        "vendor": "postgresql",
        "engine": "django.db.backends.postgresql",
        "host": "db-eu-2",
        "port": 5432,
        "name": alias,
    }
    if status == "up":
        defaults.update(connect_ms=3.0, query_ms=0.5)
    return ProbeResult(alias=alias, status=status, **{**defaults, **values})  # type: ignore[arg-type]


def tenant_site() -> list[ProbeResult]:
    """default, 200 tenants on db-eu-2 (two down), 50 on a MariaDB server (one read-only)."""
    found = [result("default", host="db-main")]
    found += [result(f"t{n:03d}") for n in range(200)]
    found[17] = result("t016", "down", error="connection refused")
    found[42] = result("t041", "timeout", error="no answer within 2 s")
    found += [
        result(f"m{n:02d}", vendor="mysql", host="db-eu-3", port=3306, read_only=n == 7)
        for n in range(50)
    ]
    return found


def test_summary_counts_every_condition_and_lists_what_needs_attention_first() -> None:
    page = overview.build(from_results(tenant_site()), Filter(), warn_ms=1000)

    assert page.total == 251
    assert dict(page.summary_parts) == {"down": 1, "timeout": 1, "read-only": 1, "up": 249}
    assert [row.alias for row in page.attention] == ["t016", "t041", "m07"]


def test_aliases_are_grouped_by_server_and_healthy_big_groups_collapse() -> None:
    page = overview.build(from_results(tenant_site()), Filter(), warn_ms=1000)

    groups = {group.location: group for group in page.groups}
    assert set(groups) == {"db-main:5432", "db-eu-2:5432", "db-eu-3:3306"}
    tenants = groups["db-eu-2:5432"]
    assert not tenants.collapsed and len(tenants.rows) == 200  # it has trouble: shown
    assert groups["db-eu-3:3306"].rows  # one read-only alias: shown
    assert groups["db-main:5432"].collapsed  # healthy: on a page this big, one line
    assert [group.healthy for group in page.groups] == [False, False, True]


def test_a_small_page_shows_every_alias_and_a_big_one_folds_healthy_files_into_one_line() -> None:
    files = [
        result(f"f{n:03d}", vendor="sqlite", host=None, port=None, name=f"/srv/f{n:03d}.db")
        for n in range(30)
    ]

    small = overview.build(from_results(files[:3]), Filter(), warn_ms=1000)
    big = overview.build(from_results(files), Filter(), warn_ms=1000)

    assert [len(group.rows) for group in small.groups] == [1, 1, 1]
    (folded,) = big.groups
    assert folded.collapsed and folded.counts == {"up": 30}
    assert folded.location == "30 files with one alias each"


def test_a_healthy_server_with_many_aliases_is_one_line() -> None:
    found = [result("default", host="db-main")] + [result(f"t{n:03d}") for n in range(200)]

    page = overview.build(from_results(found), Filter(), warn_ms=1000)

    (tenants,) = [group for group in page.groups if group.location == "db-eu-2:5432"]
    assert tenants.collapsed and tenants.rows == () and tenants.counts == {"up": 200}


def test_filter_to_down_aliases_on_one_server_from_the_query_string() -> None:
    page_filter = Filter.from_query({"status": "down", "server": "postgresql:db-eu-2:5432"})

    page = overview.build(from_results(tenant_site()), page_filter, warn_ms=1000)

    assert [row.alias for group in page.groups for row in group.rows] == ["t016"]
    assert page.filter.query_string() == "status=down&server=postgresql%3Adb-eu-2%3A5432"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"q": "M0"}, {"m00", "m01", "m02", "m03", "m04", "m05", "m06", "m07", "m08", "m09"}),
        ({"vendor": "mysql", "status": "read-only"}, {"m07"}),
        ({"critical": "1"}, {"default"}),
        ({"status": "timeout"}, {"t041"}),
        ({"status": "nonsense", "q": "default"}, {"default"}),
    ],
)
def test_filters_by_status_vendor_critical_and_name(query, expected) -> None:
    page = overview.build(from_results(tenant_site()), Filter.from_query(query), warn_ms=1000)

    assert {row.alias for group in page.groups for row in group.rows} == expected


def test_slow_and_behind_count_as_needing_attention() -> None:
    found = [result("default", connect_ms=1500.0), result("other", host="elsewhere")]
    drifts = {"other": Drift("other", "behind", ("demo.0002_x",))}

    page = overview.build(from_results(found, drifts=drifts), Filter(), warn_ms=1000)

    assert dict(page.summary_parts) == {"behind": 1, "slow": 1, "up": 2}
    assert [row.alias for row in page.attention] == ["default", "other"]
