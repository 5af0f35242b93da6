from __future__ import annotations

import os
import pickle
import threading
import time
import uuid
from collections import Counter
from urllib.parse import urlsplit

import pytest
from django.core.cache import cache

from dashboard import results
from dashboard.probes import wait_idle
from tests.conftest import SLACK_SECONDS, postgres_like
from tests.processes import run_together
from tests.test_command import servers_env

# A Redis database of its own (13); keys also carry a prefix unique to each run.
_REDIS = urlsplit(os.environ.get("DBHEALTH_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"))
REDIS_URL = f"redis://{_REDIS.netloc}/13"


@pytest.fixture
def long_ttl(settings) -> None:
    settings.DBHEALTH = {**settings.DBHEALTH, "CACHE_TTL": 60}


def burst(count: int, call) -> list:
    """``count`` threads released at once by a barrier; returns what each call returned."""
    barrier = threading.Barrier(count)
    answers: list = []
    lock = threading.Lock()

    def worker() -> None:
        barrier.wait(timeout=10)
        answer = call()
        with lock:
            answers.append(answer)

    threads = [threading.Thread(target=worker) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(answers) == count
    return answers


def test_latest_serves_the_cached_result_within_the_ttl(probes, long_ttl) -> None:
    first = results.latest()
    second = results.latest()

    assert [r.alias for r in first] == ["default", "second_db", "local"]
    assert second == first
    assert probes.counts == {"default": 1, "second_db": 1, "local": 1}


def test_latest_probes_again_once_the_ttl_has_passed(probes, settings) -> None:
    settings.DBHEALTH = {**settings.DBHEALTH, "CACHE_TTL": 1}
    (first,) = results.latest(["second_db"])

    deadline = time.monotonic() + 10
    while probes.counts["second_db"] < 2 and time.monotonic() < deadline:
        (latest,) = results.latest(["second_db"])

    assert probes.counts["second_db"] == 2
    assert 1.0 <= (latest.checked_at - first.checked_at).total_seconds() < 5


def test_fresh_probes_now_and_refreshes_the_cache(probes, long_ttl) -> None:
    (cached,) = results.latest(["default"])
    (pinged,) = results.fresh(["default"])
    (served,) = results.latest(["default"])

    assert pinged.checked_at > cached.checked_at
    assert served == pinged
    assert probes.counts["default"] == 2


def test_latest_keeps_settings_order_and_rejects_unknown_aliases() -> None:
    assert [r.alias for r in results.latest(["local", "default", "local"])] == [
        "default",
        "local",
    ]
    with pytest.raises(KeyError, match="nope"):
        results.latest(["default", "nope"])


def test_an_alias_whose_settings_change_is_not_served_the_old_result(
    add_alias, closed_port, long_ttl
) -> None:
    add_alias("moving", **postgres_like())
    (before,) = results.latest(["moving"])
    add_alias("moving", **postgres_like(PORT=str(closed_port)))
    (after,) = results.latest(["moving"])

    assert before.status == "up"
    assert after.status == "down"


def test_a_burst_of_fifty_callers_probes_each_alias_once(probes, long_ttl) -> None:
    answers = burst(50, results.latest)

    assert probes.counts == {"default": 1, "second_db": 1, "local": 1}
    assert {tuple(answer) for answer in answers} == {tuple(answers[0])}
    assert all(result.ok for result in answers[0])


def test_callers_wait_for_the_probe_in_flight_instead_of_starting_another(
    probes, add_alias, silent_port, settings, no_stragglers
) -> None:
    settings.DBHEALTH = {**settings.DBHEALTH, "CACHE_TTL": 60, "TIMEOUT": 1.0}
    alias = add_alias("silent", **postgres_like(PORT=str(silent_port)))

    started = time.monotonic()
    answers = burst(10, lambda: results.latest([alias]))
    elapsed = time.monotonic() - started

    assert probes.counts[alias] <= 1  # the straggler may still be stuck in its connect
    assert all(answer[0].status == "timeout" for answer in answers)
    assert elapsed < 1.0 + 2.0
    assert wait_idle(timeout=10)
    assert probes.counts[alias] == 1


def test_a_lock_whose_holder_died_only_delays_the_next_probe(probes, settings) -> None:
    settings.DBHEALTH = {**settings.DBHEALTH, "CACHE_TTL": 60, "TIMEOUT": 0.5}
    # What a worker killed in the middle of its probe leaves behind.
    cache.add(results._lock_key("default"), True, 2)

    started = time.monotonic()
    (waited,) = results.latest(["default"])
    waited_for = time.monotonic() - started
    deadline = time.monotonic() + 10
    while probes.counts["default"] == 0 and time.monotonic() < deadline:
        (latest,) = results.latest(["default"])

    assert waited.status == "timeout"
    assert 0.5 <= waited_for < 0.5 + 0.5 + SLACK_SECONDS
    assert probes.counts["default"] == 1
    assert latest.status == "up"


def test_a_cache_outage_falls_back_to_probing(settings, closed_port, client, caplog) -> None:
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{closed_port}/0",
        }
    }

    (result,) = results.latest(["default"])
    response = client.get("/health/")

    assert result.ok
    assert response.status_code == 200 and response.json()["status"] == "pass"
    assert "cache 'default' failed (ConnectionError); working without it" in caplog.text


def test_results_survive_pickling_for_shared_caches() -> None:
    (result,) = results.fresh(["second_db"])

    assert pickle.loads(pickle.dumps(result)) == result  # noqa: S301 (our own bytes)


BURST_SCRIPT = """
import json, os, sys, threading
import django

django.setup()
from django.core.cache import caches
from django.test.utils import override_settings

from dashboard import results
from dashboard.probes import probe_finished

probed = []
probe_finished.connect(lambda sender, result, **kw: probed.append(result.alias), weak=False)
redis = {
    "BACKEND": "django.core.cache.backends.redis.RedisCache",
    "LOCATION": os.environ["REDIS_URL"],
    "KEY_PREFIX": os.environ["KEY_PREFIX"],
}
with override_settings(CACHES={"default": redis}):
    print("ready", flush=True)
    sys.stdin.readline()
    barrier = threading.Barrier(25)
    seen = []

    def request():
        barrier.wait(timeout=10)
        seen.append(results.latest(["default", "second_db"]))

    threads = [threading.Thread(target=request) for _ in range(25)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    backend = type(caches["default"]).__name__
print(json.dumps({
    "backend": backend,
    "probed": probed,
    "answers": len(seen),
    "statuses": sorted({r.status for answer in seen for r in answer}),
    "readings": sorted({f"{r.alias}@{r.checked_at.isoformat()}" for a in seen for r in a}),
}))
"""


def test_two_processes_sharing_redis_probe_each_alias_once() -> None:
    env = {
        **servers_env(),
        "REDIS_URL": REDIS_URL,
        "KEY_PREFIX": f"dbhealth-test-{uuid.uuid4().hex}",
        "DBHEALTH_CACHE_TTL": "60",
    }
    reports = run_together(BURST_SCRIPT, env, count=2, timeout=60)
    probed = Counter(alias for report in reports for alias in report["probed"])
    assert probed == {"default": 1, "second_db": 1}
    assert [report["backend"] for report in reports] == ["RedisCache", "RedisCache"]
    assert [report["answers"] for report in reports] == [25, 25]
    assert all(report["statuses"] == ["up"] for report in reports)
    # Both processes served the very same two readings.
    assert reports[0]["readings"] == reports[1]["readings"]
    assert len(reports[0]["readings"]) == 2
