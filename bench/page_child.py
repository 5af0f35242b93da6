"""Subprocess side of row 9: the db-health page of one site, rendered from the cache.

``python -m bench.page_child RENDERS`` (with the site's environment, ``bench.children``):
migrates ``default`` and copies it to every tenant, logs a superuser in through Django's
test client, renders
``/admin/db-health/`` once to probe every alias and fill the cache, then RENDERS times
more, timed; and fetches the table partial and ``/metrics`` once each. One JSON line.
"""

from __future__ import annotations

import json
import shutil
import statistics
import sys
import time
from typing import Any


def measure(renders: int) -> dict[str, Any]:
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connections
    from django.test import Client

    call_command("migrate", database="default", verbosity=0, interactive=False)
    # Every tenant a migrated copy of default, as on a healthy site (an empty file would
    # rightly be listed as behind on its migrations, and every row shown).
    source = str(connections.settings["default"]["NAME"])
    connections["default"].close()
    for alias, settings_dict in connections.settings.items():
        if alias != "default":
            shutil.copyfile(source, str(settings_dict["NAME"]))
    user = get_user_model().objects.create_superuser("bench-admin", "bench@example.invalid")
    client = Client()
    client.force_login(user)

    warm_started = time.perf_counter()
    warm = client.get("/admin/db-health/")
    warm_s = time.perf_counter() - warm_started
    times = []
    for _ in range(renders):
        started = time.perf_counter()
        page = client.get("/admin/db-health/")
        times.append(time.perf_counter() - started)
    table = client.get("/admin/db-health/table/", headers={"HX-Request": "true"})
    metrics = client.get("/metrics")
    return {
        "aliases": len(connections.settings),
        "statuses": [warm.status_code, page.status_code, table.status_code, metrics.status_code],
        "warm_render_s": warm_s,
        "render_s": times,
        "median_render_s": statistics.median(times),
        "page_bytes": len(page.content),
        "table_bytes": len(table.content),
        "metrics_bytes": len(metrics.content),
    }


if __name__ == "__main__":
    print(json.dumps(measure(int(sys.argv[1]))), flush=True)
