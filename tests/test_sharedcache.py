"""The shared cache is bounded like a database: a socket timeout per call, a back-off after
a failure (nothing asked of the cache, one warning), and recovery once it answers again."""

from __future__ import annotations

import logging
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.test import Client

from config.env_cache import cache_from_url
from dashboard import history, sharedcache
from tests.redisserver import RedisServer
from tests.servers import SilentListener

# A call may take one 0.25 s socket timeout; the rest is slack for two busy cores.
BOUND = 1.0
SOCKET_TIMEOUTS = {"socket_connect_timeout": 0.25, "socket_timeout": 0.25}


@pytest.fixture(autouse=True)
def _no_back_off_from_earlier_tests() -> Iterator[None]:
    # Samples of earlier tests' probes would reach the cache under test on their own.
    assert history.flush(10)
    sharedcache.reset()
    yield
    sharedcache.reset()


def redis_cache(location: str) -> dict[str, Any]:
    return {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": location,
        "KEY_PREFIX": f"dbhealth-test-{uuid.uuid4().hex}",
        "OPTIONS": dict(SOCKET_TIMEOUTS),
    }


UseCache = Callable[..., None]


@pytest.fixture
def use_cache(settings: Any) -> UseCache:
    def use(config: dict[str, Any], *, backoff: float = 5.0) -> None:
        settings.CACHES = {"default": config}
        settings.DBHEALTH = {**settings.DBHEALTH, "CACHE_BACKOFF": backoff}

    return use


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


def timed(call: Callable[[], Any]) -> tuple[Any, float]:
    started = time.monotonic()
    answer = call()
    return answer, time.monotonic() - started


def every_call() -> tuple[Any, ...]:
    answers = (
        sharedcache.get("k", "default"),
        sharedcache.get_many(["k", "l"]),
        sharedcache.set("k", 1, 5),
        sharedcache.set_many({"k": 1, "l": 2}, 5),
        sharedcache.add("k", 1, 5),
        sharedcache.delete("k"),
        sharedcache.delete_many(["k", "l"]),
    )
    with sharedcache.lock("held", ttl=5, wait=1) as held:
        return (*answers, held)


UNAVAILABLE = ("default", {}, False, False, None, None, None, None)


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == "dashboard.sharedcache" and record.levelno == logging.WARNING
    ]


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


class Dials:
    """Counts the connections a SilentListener accepted from the app.

    A marker connection made now is accepted after every earlier one (the kernel's
    accept queue is first in, first out), so once it shows up the count is complete.
    """

    def __init__(self, listener: SilentListener) -> None:
        self.listener = listener
        self.markers: set[tuple[str, int]] = set()

    def count(self) -> int:
        with socket.create_connection(("127.0.0.1", self.listener.port)) as marker:
            mine = marker.getsockname()
            self.markers.add(mine)
            wait_until(lambda: mine in self._peers())
            return len([peer for peer in self._peers() if peer not in self.markers])

    def _peers(self) -> list[tuple[str, int]]:
        return [conn.getpeername() for conn in list(self.listener.accepted)]


# --- a cache that is not there ------------------------------------------------------------


def test_a_refused_cache_gives_every_call_its_unavailable_answer_at_once(
    use_cache: UseCache, closed_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    use_cache(redis_cache(f"redis://127.0.0.1:{closed_port}/0"))

    with caplog.at_level(logging.WARNING):
        answers, elapsed = timed(every_call)

    assert answers == UNAVAILABLE
    assert elapsed < BOUND
    assert not sharedcache.available()
    assert warnings(caplog) == [
        "cache 'default' failed (ConnectionError); working without it for 5 s"
    ]


def test_a_silent_cache_costs_one_socket_timeout_then_is_not_asked_during_the_back_off(
    use_cache: UseCache, silent_listener: SilentListener, caplog: pytest.LogCaptureFixture
) -> None:
    use_cache(redis_cache(f"redis://127.0.0.1:{silent_listener.port}/0"))
    dials = Dials(silent_listener)

    with caplog.at_level(logging.WARNING):
        first, waited = timed(lambda: sharedcache.get("k", "default"))
        dialled = dials.count()
        answers, skipped = timed(lambda: [every_call() for _ in range(100)])

    assert first == "default"
    assert waited < BOUND
    assert dialled == 1
    assert answers == [UNAVAILABLE] * 100
    assert skipped < BOUND  # 800 calls, none of which waited for the listener
    assert dials.count() == dialled
    assert warnings(caplog) == ["cache 'default' failed (TimeoutError); working without it for 5 s"]


def test_callers_failing_together_log_one_warning_and_the_next_back_off_one_more(
    use_cache: UseCache, silent_listener: SilentListener, caplog: pytest.LogCaptureFixture
) -> None:
    use_cache(redis_cache(f"redis://127.0.0.1:{silent_listener.port}/0"), backoff=0.5)
    barrier = threading.Barrier(20)
    took: list[float] = []

    def caller() -> None:
        barrier.wait(timeout=10)
        took.append(timed(lambda: sharedcache.get("k"))[1])

    with caplog.at_level(logging.WARNING):
        threads = [threading.Thread(target=caller) for _ in range(20)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert len(warnings(caplog)) == 1
        wait_until(sharedcache.available)
        sharedcache.get("k")

    assert len(took) == 20 and max(took) < BOUND
    assert (
        warnings(caplog)
        == ["cache 'default' failed (TimeoutError); working without it for 0.5 s"] * 2
    )


def test_after_a_back_off_one_call_tries_the_cache_while_the_others_still_skip_it(
    use_cache: UseCache, silent_listener: SilentListener
) -> None:
    use_cache(redis_cache(f"redis://127.0.0.1:{silent_listener.port}/0"), backoff=0.3)
    dials = Dials(silent_listener)
    sharedcache.get("k")
    wait_until(sharedcache.available)
    before = dials.count()

    trial = threading.Thread(target=sharedcache.get, args=("k",))
    trial.start()
    wait_until(lambda: dials.count() > before)  # the trial is waiting on the listener
    answer, elapsed = timed(lambda: sharedcache.get("k", "skipped"))
    trial.join(timeout=10)

    assert answer == "skipped" and elapsed < 0.2
    assert dials.count() == before + 1


def test_a_lock_without_a_cache_says_none_at_once(use_cache: UseCache, closed_port: int) -> None:
    use_cache(redis_cache(f"redis://127.0.0.1:{closed_port}/0"))

    with sharedcache.lock("k", ttl=5, wait=3) as held:
        pass

    assert held is None


# --- a real Redis, stopped and started again ------------------------------------------------


def test_the_app_works_on_while_redis_is_down_and_uses_it_again_once_it_is_back(
    use_cache: UseCache, redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    use_cache(redis_cache(redis_server.url), backoff=0.5)
    assert sharedcache.set("k", "before", 60) is True
    assert sharedcache.get("k") == "before"

    with caplog.at_level(logging.INFO, logger="dashboard.sharedcache"):
        redis_server.stop()
        down, elapsed = timed(every_call)
        redis_server.start()  # empty again: nothing is saved
        with redis_server.client() as raw:
            connections = raw.info("stats")["total_connections_received"]
            assert sharedcache.get("k", "skipped") == "skipped"  # still backing off
            assert raw.info("stats")["total_connections_received"] == connections
        wait_until(sharedcache.available)
        stored = sharedcache.set("k", "after", 60)

    assert down == UNAVAILABLE and elapsed < BOUND
    assert stored is True
    assert sharedcache.get("k") == "after"
    assert sharedcache.add("k", "other", 60) is False
    assert warnings(caplog) == [
        "cache 'default' failed (ConnectionError); working without it for 0.5 s"
    ]
    assert "cache 'default' answers again" in caplog.text


def test_redis_keeps_a_fraction_of_a_second_for_a_whole_second_not_zero(
    use_cache: UseCache, redis_server: RedisServer
) -> None:
    config = redis_cache(redis_server.url)
    use_cache(config)

    assert sharedcache.set("short", 1, 0.3) is True
    assert sharedcache.add("lock", 1, 0.3) is True
    assert sharedcache.set_many({"many": 1}, 0.3) is True

    with redis_server.client() as raw:
        for name in ("short", "lock", "many"):
            assert 0 < raw.pttl(f"{config['KEY_PREFIX']}:1:{name}") <= 1000


def test_a_lock_is_shared_through_redis_and_released_on_exit(
    use_cache: UseCache, redis_server: RedisServer
) -> None:
    use_cache(redis_cache(redis_server.url))

    with sharedcache.lock("k", ttl=5, wait=0) as first:
        with sharedcache.lock("k", ttl=5, wait=0.3) as second:
            pass
        with redis_server.client() as raw:
            assert raw.keys("*:k")  # the lock lives in Redis, for every worker to see
    with sharedcache.lock("k", ttl=5, wait=0) as again:
        pass

    assert (first, second, again) == (True, False, True)


# --- locks (in-process cache) ---------------------------------------------------------------


def try_lock(wait: float) -> bool | None:
    with sharedcache.lock("k", ttl=5, wait=wait) as held:
        return held


def test_a_lock_waits_for_its_holder_as_long_as_asked() -> None:
    with sharedcache.lock("k", ttl=5, wait=0) as first:
        second, waited = timed(lambda: try_lock(0.3))

    assert first is True and second is False
    assert waited >= 0.3


def test_a_lock_held_past_its_ttl_is_not_released_from_under_the_next_holder() -> None:
    stalled = sharedcache.lock("k", ttl=0.2, wait=0)
    assert stalled.__enter__() is True
    after = sharedcache.lock("k", ttl=30, wait=5)
    assert after.__enter__() is True  # once the stalled holder's lock expired

    stalled.__exit__(None, None, None)
    still_held = sharedcache.add("k", True, 30) is False
    after.__exit__(None, None, None)

    assert still_held
    assert sharedcache.add("k", True, 30) is True


# --- keys ---------------------------------------------------------------------------------


def test_keys_name_their_kind_and_parts_and_hash_what_memcached_would_refuse() -> None:
    assert sharedcache.key("history", "second_db") == "dbhealth:history:second_db"
    assert sharedcache.key("result", "eu orders", 1).startswith("dbhealth:result:")
    assert " " not in sharedcache.key("result", "eu orders", 1)
    assert len(sharedcache.key("table", "x" * 500)) < 250
    assert sharedcache.key("table", "a" * 300) != sharedcache.key("table", "b" * 300)


# --- end to end -----------------------------------------------------------------------------


def test_health_answers_in_probe_time_when_redis_accepts_and_never_answers(
    client: Client,
    settings: Any,
    silent_listener: SilentListener,
    canary: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The project's own CACHE_URL handling bounds the cache: no 5 s per request."""
    settings.CACHES = {
        "default": cache_from_url(f"redis://:{canary}@127.0.0.1:{silent_listener.port}/0")
    }
    timeout = settings.DBHEALTH["TIMEOUT"]

    with caplog.at_level(logging.INFO):
        answers = [timed(lambda: client.get("/health/")) for _ in range(3)]

    for response, elapsed in answers:
        assert response.status_code == 200 and response.json()["status"] == "pass"
        assert elapsed < timeout + 0.5
        assert canary not in response.content.decode()
    assert canary not in caplog.text
