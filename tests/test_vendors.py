"""One module per vendor: each states every part, the generic modules only ask for them,
and a new vendor is one more module."""

from __future__ import annotations

import ast
import dataclasses
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from dashboard import activity, cancel, checks, drift, maintenance, vendors, vitals
from dashboard.deadline import Deadline
from dashboard.probes import probe
from dashboard.switching import readonly
from dashboard.vendors import Vendor, mysql, postgresql, sqlite
from tests.tinybackend import vendor as tiny

VENDOR_MODULES = [postgresql, mysql, sqlite]
GENERIC_MODULES = [vitals, activity, maintenance, drift, cancel, checks, readonly]
DRIVERS = {"sqlite3", "psycopg", "MySQLdb"}


def _name(module: ModuleType) -> str:
    return module.__name__.rsplit(".", 1)[-1]


def test_every_part_of_a_vendor_must_be_stated() -> None:
    defaulted = [
        field.name
        for field in dataclasses.fields(Vendor)
        if field.default is not dataclasses.MISSING
        or field.default_factory is not dataclasses.MISSING
    ]
    parts = {field.name: getattr(sqlite.VENDOR, field.name) for field in dataclasses.fields(Vendor)}

    assert defaulted == []
    with pytest.raises(TypeError, match="sessions"):
        Vendor(**{name: part for name, part in parts.items() if name != "sessions"})


@pytest.mark.parametrize("module", VENDOR_MODULES, ids=_name)
def test_each_vendor_module_is_registered_under_its_django_vendor_name(module: ModuleType) -> None:
    assert module.VENDOR.name == _name(module)
    assert vendors.get(module.VENDOR.name) is module.VENDOR


def test_every_module_of_the_package_but_the_base_is_a_registered_vendor() -> None:
    package = Path(vendors.__file__).parent
    modules = {path.stem for path in package.glob("*.py")} - {"__init__", "base"}

    assert modules == {vendor.name for vendor in vendors.BUILT_IN} == set(vendors.VENDORS)


def _vendor_names_and_drivers(module: ModuleType) -> list[str]:
    tree = ast.parse(Path(str(module.__file__)).read_text())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and node.value in vendors.VENDORS:
            found.append(f"{node.lineno}: {node.value!r}")
        elif isinstance(node, ast.Import | ast.ImportFrom):
            imported = [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            imported += [alias.name for alias in node.names]
            found += [f"{node.lineno}: import {name}" for name in imported if name in DRIVERS]
    return found


@pytest.mark.parametrize("module", GENERIC_MODULES, ids=_name)
def test_the_generic_modules_name_no_vendor_and_import_no_driver(module: ModuleType) -> None:
    assert _vendor_names_and_drivers(module) == []


def test_the_check_finds_a_vendor_name_and_a_driver() -> None:
    assert _vendor_names_and_drivers(sqlite) != []


@pytest.fixture
def tiny_registered() -> Iterator[None]:
    """The test's own vendor module registered for its ``tinysql`` backend, for one test."""
    before = dict(vendors.VENDORS)
    vendors.register(tiny.VENDOR)
    try:
        yield
    finally:
        vendors.VENDORS.clear()
        vendors.VENDORS.update(before)


def _tiny_file(path: Path) -> Path:
    sqlite3.connect(path).close()
    return path


def test_a_backend_without_a_vendor_module_is_probed_through_django(
    tmp_path: Path, add_alias: Any
) -> None:
    alias = add_alias(
        "tiny_unknown", ENGINE="tests.tinybackend", NAME=str(_tiny_file(tmp_path / "t.db"))
    )

    result = probe(alias)

    assert result.status == "up" and result.vendor == "tinysql"
    assert result.server_version == sqlite3.sqlite_version
    assert vitals.read(alias).error == "no bounded connection for the 'tinysql' backend"


def test_a_vendor_added_as_one_module_is_used_for_every_part_it_states(
    tmp_path: Path, add_alias: Any, tiny_registered: None
) -> None:
    alias = add_alias(
        "tiny_known", ENGINE="tests.tinybackend", NAME=str(_tiny_file(tmp_path / "t.db"))
    )

    result = probe(alias)
    read = vitals.read(alias)
    sessions = activity.read(alias, deadline=Deadline.after(2))
    migrations = drift.check(alias)
    warnings = [message.msg for message in checks.check_connect_timeouts(None)]

    assert result.status == "up" and result.server_version == f"tiny {sqlite3.sqlite_version}"
    assert result.read_only is False  # its ping, SELECT 0, says writes are not refused
    assert [(vital.key, vital.reading.text) for vital in read.readings] == [("answer", "42!")]
    assert sessions.error == "tinysql keeps no server sessions to list"
    assert migrations.error == "not supported for tinysql"
    assert any("'tiny_known' has no 'timeout'" in text for text in warnings)
    # A file of its own, like SQLite: named by its path, a connection budget of its own.
    assert result.is_file and result.location == str(tmp_path / "t.db")
    assert result.server == f"tinysql:{tmp_path / 't.db'}"
