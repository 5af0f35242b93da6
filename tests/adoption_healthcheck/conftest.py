"""The django-health-check site runs in a pytest process of its own, under its own settings.

``pytest --ds=tests.adoption_healthcheck.settings tests/adoption_healthcheck`` (part of
``make test``); under any other settings module this directory is not collected.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings

SETTINGS_MODULE = "tests.adoption_healthcheck.settings"


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    return None if settings.SETTINGS_MODULE == SETTINGS_MODULE else True
