"""Loopback addresses that misbehave, for the test fixtures and the benchmark alike.

Plain sockets and threads only: ``bench`` imports this module before Django is set up.
"""

from __future__ import annotations

import socket
import threading
from contextlib import closing


def unused_port() -> int:
    """A loopback port nothing listens on: connecting is refused at once, and a server
    started by the caller can bind it."""
    with closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Acceptor:
    """Accepts TCP connections on a loopback port in a daemon thread until ``close()``;
    a subclass says what becomes of each connection in ``handle``."""

    thread_name = "acceptor"

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(256)
        # accept() wakes up this often to see whether close() was called.
        self.sock.settimeout(0.2)
        self.port = int(self.sock.getsockname()[1])
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name=self.thread_name, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.handle(conn)

    def handle(self, conn: socket.socket) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()


class SilentListener(Acceptor):
    """Accepts TCP connections and never sends a byte: a black-holed server."""

    thread_name = "silent-listener"

    def __init__(self) -> None:
        self.accepted: list[socket.socket] = []
        super().__init__()

    def handle(self, conn: socket.socket) -> None:
        self.accepted.append(conn)

    def close(self) -> None:
        super().close()
        for conn in self.accepted:
            conn.close()
