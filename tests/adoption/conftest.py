"""The adoption site runs in a pytest process of its own, under its own settings.

``pytest --ds=tests.adoption.settings tests/adoption``: Django settings are per
process, so under any other settings module (the main ``tests.settings`` run) this
directory is not collected, and the run says so at the end. ``make test`` runs it as
its own invocation, ``make test-matrix`` on each supported Django line, from a copy
without the rest of ``tests/``: nothing here may rely on ``tests/conftest.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings

SETTINGS_MODULE = "tests.adoption.settings"
_not_collected: list[Path] = []


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    if settings.SETTINGS_MODULE == SETTINGS_MODULE:
        return None
    if collection_path.suffix == ".py" and collection_path.name.startswith("test_"):
        _not_collected.append(collection_path)
    return True


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _not_collected:
        terminalreporter.write_line(
            f"tests/adoption: {len(_not_collected)} test file(s) not collected under "
            f"{settings.SETTINGS_MODULE}; they run on their own: "
            f"pytest --ds={SETTINGS_MODULE} tests/adoption (part of `make test`)"
        )
