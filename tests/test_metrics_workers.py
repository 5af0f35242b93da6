"""/metrics under gunicorn with two workers: the counters add up across the workers."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.gunicornsite import serve, site_env
from tests.servers import unused_port


def counters(text: str, alias: str) -> tuple[float, float]:
    """The dead alias's failures and the live alias's latency observations."""
    failures = observed = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "dbhealth_probe_failures_total" and sample.labels["alias"] == alias:
                failures += sample.value
            if (
                sample.name == "dbhealth_latency_seconds_count"
                and sample.labels["alias"] == "default"
            ):
                observed += sample.value
    return failures, observed


def test_ten_scrapes_across_two_workers_never_see_a_counter_go_down(tmp_path: Path) -> None:
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    # Left by an earlier run: gunicorn's start must not add it to this run's figures.
    (metrics_dir / "counter_999999.db").write_bytes(b"stale")
    env = site_env(
        tmp_path,
        DATABASE_URL_DEAD=f"postgres://nobody@127.0.0.1:{unused_port()}/nothing",
        DBHEALTH_CACHE_TTL="0",
        PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),
    )

    log = tmp_path / "gunicorn.log"
    with serve(env, workers=2, log=log) as site:
        # Requests at once keep both workers busy, so both probe and count.
        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(lambda _: site.get("/metrics"), range(4)))
            assert {status for status, _ in answers} == {200}, log.read_text()[-3000:]
        scraped = []
        for _ in range(10):
            status, text = site.get("/metrics")
            assert status == 200, log.read_text()[-3000:]
            scraped.append(counters(text, "dead"))

    failures = [f for f, _ in scraped]
    observed = [o for _, o in scraped]
    assert failures == sorted(failures), scraped
    assert observed == sorted(observed), scraped
    # Every request probed the dead alias once (the cache TTL is 0), whichever worker.
    assert failures[-1] >= 10
    assert len(list(metrics_dir.glob("counter_*.db"))) == 2  # both workers counted
    assert not (metrics_dir / "counter_999999.db").exists()
