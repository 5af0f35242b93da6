"""A throwaway redis-server the test starts, stops and starts again on the same port.

    with RedisServer() as server:   # started, answering PING
        server.stop()               # killed: the port refuses connections
        server.start()              # the same port again, empty (nothing is saved)

Nothing is written to disk (``--save "" --appendonly no``); the server binds loopback only.
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from types import TracebackType

import redis

from tests.servers import unused_port

READY_SECONDS = 10.0


class RedisServer:
    def __init__(self) -> None:
        self.port = unused_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._dir = tempfile.TemporaryDirectory(prefix="dbhealth-redis-")
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self._process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", self._dir.name],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + READY_SECONDS
        with redis.Redis(port=self.port, socket_timeout=0.5, socket_connect_timeout=0.5) as raw:
            while True:
                try:
                    raw.ping()
                    return
                except redis.ConnectionError:
                    if time.monotonic() > deadline or self._process.poll() is not None:
                        self.stop()
                        raise RuntimeError(f"redis-server did not start on {self.port}") from None
                    time.sleep(0.02)

    def stop(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.wait(timeout=10)
            self._process = None

    def client(self) -> redis.Redis:
        """A raw client of its own, to look at what the app stored."""
        return redis.Redis(port=self.port, socket_timeout=1, socket_connect_timeout=1)

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
        self._dir.cleanup()
