"""Settings for a site that a benchmark row builds on the fly (rows 7-9).

This project's settings, with the ``DATABASES`` and ``DBHEALTH`` additions of a JSON
file named by ``DBHEALTH_BENCH_SITE`` (written by the row, read by every process it
starts: probe rounds, gunicorn, ``manage.py dbhealth``). The cache is this process's
own memory, so a process starts cold; ``bench.urls`` adds the endpoint that empties it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from config.settings import *  # noqa: F403
from config.settings import DBHEALTH as PROJECT_DBHEALTH

SITE = json.loads(Path(os.environ["DBHEALTH_BENCH_SITE"]).read_text(encoding="utf-8"))

DATABASES = SITE["databases"]
DATABASE_ROUTERS: list[str] = []
# The project's demo pin names an alias these sites do not have.
DBHEALTH = {**PROJECT_DBHEALTH, "ROUTES": {}, **SITE.get("dbhealth", {})}
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "LOCATION": "dbhealth-bench-site",
        # A result per alias plus its history: room for hundreds of aliases.
        "OPTIONS": {"MAX_ENTRIES": 100_000},
    }
}
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
ROOT_URLCONF = "bench.urls"
LOGGING = {"version": 1, "disable_existing_loggers": False}
