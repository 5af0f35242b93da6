"""A small, bounded HTTP load generator for loopback: threads, raw sockets, one request each.

gunicorn's sync workers close every connection, so each request is a fresh TCP
connection, as a load balancer's health checks usually are. The client is a few
lines of socket code so that the server, not the client, is what runs out of CPU.
"""

from __future__ import annotations

import socket
import threading
import time
from collections import Counter


def _request(port: int, path: str) -> bytes:
    return (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n").encode(
        "ascii"
    )


def get_status(port: int, path: str, timeout: float = 5.0) -> int:
    """One request; the HTTP status code (0 when the connection failed)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(_request(port, path))
            head = b""
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                head = head or chunk[:16]
        return int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/") else 0
    except (OSError, ValueError, IndexError):
        return 0


def hammer(port: int, path: str, seconds: float, threads: int = 8) -> tuple[Counter[int], float]:
    """``threads`` clients request ``path`` for ``seconds``: statuses, and the real duration."""
    statuses: Counter[int] = Counter()
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def client() -> None:
        mine: Counter[int] = Counter()
        while time.monotonic() < deadline:
            mine[get_status(port, path)] += 1
        with lock:
            statuses.update(mine)

    workers = [threading.Thread(target=client, name=f"load-{n}") for n in range(threads)]
    started = time.monotonic()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return statuses, time.monotonic() - started
