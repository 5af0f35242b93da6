"""Subprocess side of row 11: one alias's page, rendered again and again without a cache.

``python -m bench.busy_child ALIAS RENDERS`` (with the site's environment,
``bench.children``): migrates ``default`` (the site's own SQLite file, for the admin's
users), logs a superuser in through Django's test client, renders
``/admin/db-health/ALIAS/`` once warm, then RENDERS times, timed, and counts the sessions
the last page lists. One JSON line.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from typing import Any


def measure(alias: str, renders: int) -> dict[str, Any]:
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.test import Client

    call_command("migrate", database="default", verbosity=0, interactive=False)
    user = get_user_model().objects.create_superuser("bench-admin", "bench@example.invalid")
    client = Client()
    client.force_login(user)
    path = f"/admin/db-health/{alias}/"

    warm = client.get(path)
    times = []
    for _ in range(renders):
        started = time.perf_counter()
        page = client.get(path)
        times.append(time.perf_counter() - started)
    body = page.content.decode()
    activity = body[body.find('id="dbhealth-activity"') : body.find('id="dbhealth-incidents"')]
    return {
        "statuses": [warm.status_code, page.status_code],
        "render_s": times,
        "median_render_s": statistics.median(times),
        "page_bytes": len(page.content),
        "listed": {part: _rows(activity, part) for part in ("running", "idle", "blocking")},
    }


def _rows(html: str, part: str) -> int:
    """Rows of the activity table ``data-part=part`` (0 when it says there are none)."""
    start = html.find(f'<table class="dbhealth-sessions" data-part="{part}"')
    if start < 0:
        return 0
    return html[start : html.find("</table>", start)].count("<tr data-session=")


if __name__ == "__main__":
    print(json.dumps(measure(sys.argv[1], int(sys.argv[2]))), flush=True)
