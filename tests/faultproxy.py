"""A TCP proxy that misbehaves on demand, put between a probe and a real server.

    proxy = FaultProxy(target_port=5432)  # listens on 127.0.0.1:proxy.port
    proxy.set_mode("delay", ms=50)        # every reply held back 50 ms: +50 ms per round trip
    proxy.set_mode("slow_start", ms=1200) # the first reply of each new connection held 1.2 s
    proxy.set_mode("blackhole")           # new connections are accepted and never answered
    proxy.set_mode("refuse")              # nothing listens on the port: connections are refused
    proxy.set_mode("cut")                 # established connections are reset, new ones too
    proxy.set_mode("pass")                # forward faithfully again, on the same port
    proxy.close()

Modes apply from the moment ``set_mode`` returns: a new delay to every reply still
to come, ``cut`` to every established connection, ``blackhole`` and ``refuse`` to
connections made afterwards. The proxy runs its own asyncio loop in a daemon
thread, binds loopback only, and stops by itself after ``lifetime`` seconds.

It also counts, per connection, the client's messages (``requests``) and the
server's replies (``replies``: a reply is server data after the client spoke, or
the greeting of a server that speaks first), so a test can say how many round
trips a delay was added to; and the most connections a client held open at once
(``peak``, since the start or ``reset_peak()``; a connection counts from its accept to
the client's close), which no client can hide from the proxy.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Literal

Mode = Literal["pass", "refuse", "blackhole", "delay", "slow_start", "cut"]
MODES: tuple[Mode, ...] = ("pass", "refuse", "blackhole", "delay", "slow_start", "cut")
DELAYING: tuple[Mode, ...] = ("delay", "slow_start")
LOOPBACK = "127.0.0.1"
CHUNK = 65536
TCP_ESTABLISHED = 1  # tcpi_state in Linux's TCP_INFO
CONTROL_TIMEOUT = 5.0


@dataclass
class Link:
    """One client connection through the proxy and, unless black-holed, its upstream twin."""

    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter | None = None
    requests: int = 0
    replies: int = 0
    closed: bool = False
    # The client has closed its side (the proxy may still be tearing the link down).
    client_gone: bool = False
    # Who spoke last decides whether the next bytes start a new message or continue one.
    _last_speaker: str = field(default="", repr=False)

    def heard_from(self, speaker: str) -> None:
        if speaker != self._last_speaker:
            if speaker == "client":
                self.requests += 1
            else:
                self.replies += 1
            self._last_speaker = speaker

    def client_connected(self) -> bool:
        """Whether the client still holds its end. Asks the kernel, which knows of the
        client's FIN before this proxy's busy loop gets round to reading it."""
        if self.client_gone:
            return False
        sock = self.client.get_extra_info("socket")
        try:
            return sock is not None and (
                sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0] == TCP_ESTABLISHED
            )
        except OSError:
            return False

    def reset(self) -> None:
        """Drop both sides at once with a TCP reset, as a failing middlebox would."""
        for writer in (self.client, self.upstream):
            if writer is None or writer.transport.is_closing():
                continue
            sock = writer.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()


class FaultProxy:
    def __init__(
        self, target_port: int, *, target_host: str = LOOPBACK, lifetime: float = 120.0
    ) -> None:
        self.target = (target_host, target_port)
        self.lifetime = lifetime
        self.mode: Mode = "pass"
        self.delay = 0.0
        self.accepted = 0
        # The most client connections that were open at once.
        self.peak_open = 0
        self.links: list[Link] = []
        self.peak = 0
        self._held: list[Link] = []  # links whose client was connected when last asked
        self._changed = threading.Condition()
        self._listener = self._bind(0)
        self.port = int(self._listener.getsockname()[1])
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        started = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(started,), name=f"fault-proxy-{self.port}", daemon=True
        )
        self._thread.start()
        if not started.wait(CONTROL_TIMEOUT):
            raise RuntimeError("the fault proxy did not start")

    # --- control, from the test's thread ------------------------------------------------

    def set_mode(self, mode: Mode, *, ms: float = 0.0) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown fault mode {mode!r}; use one of {', '.join(MODES)}")
        self._call(self._switch(mode, ms / 1000 if mode in DELAYING else 0.0))

    def reset_peak(self) -> None:
        """Count ``peak`` afresh from the connections open now."""
        with self._changed:
            self._held = [link for link in self._held if link.client_connected()]
            self.peak = len(self._held)

    def wait_for(self, condition: Callable[[FaultProxy], bool], timeout: float = 10.0) -> bool:
        """Block until ``condition(proxy)`` holds (checked on every connection event)."""
        with self._changed:
            return self._changed.wait_for(lambda: condition(self), timeout)

    def open_links(self) -> list[Link]:
        with self._changed:
            return [link for link in self.links if not link.closed]

    def close(self) -> None:
        if self._thread.is_alive() and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(CONTROL_TIMEOUT)
        if self._thread.is_alive():
            raise RuntimeError(f"fault proxy on port {self.port} did not stop")

    def _call(self, coroutine: Coroutine[Any, Any, None]) -> None:
        if not self._thread.is_alive():
            coroutine.close()
            raise RuntimeError(f"fault proxy on port {self.port} has stopped (lifetime over?)")
        asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(CONTROL_TIMEOUT)

    def _notify(self) -> None:
        with self._changed:
            self._changed.notify_all()

    # --- the loop's thread ---------------------------------------------------------------

    @staticmethod
    def _bind(port: int) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        # The same port is bound again after "refuse"; old connections may be in TIME_WAIT.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((LOOPBACK, port))
        # Room for a burst of hundreds of connects: a full backlog would make the kernel
        # drop SYNs, and the client's 1 s retransmission is no fault of the server's.
        sock.listen(1024)
        sock.setblocking(False)
        return sock

    def _run(self, started: threading.Event) -> None:
        try:
            self._loop.run_until_complete(self._main(started))
        finally:
            self._loop.close()
            self._notify()

    async def _main(self, started: threading.Event) -> None:
        self._stop = asyncio.Event()
        await self._listen(self._listener)
        started.set()
        try:
            # Bounded: a proxy a test forgot to close stops by itself.
            await asyncio.wait_for(self._stop.wait(), self.lifetime)
        except TimeoutError:
            pass
        finally:
            await self._shutdown()

    async def _listen(self, sock: socket.socket) -> None:
        self._server = await asyncio.start_server(self._accept, sock=sock)

    async def _switch(self, mode: Mode, delay: float) -> None:
        if mode == "refuse" and self._server is not None:
            self._server.close()
            self._server = None
        elif mode != "refuse" and self._server is None:
            await self._listen(self._bind(self.port))
        self.mode, self.delay = mode, delay
        if mode == "cut":
            for link in self.open_links():
                link.reset()

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for link in self.open_links():
            link.reset()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=CONTROL_TIMEOUT)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        link = Link(client=writer)
        # Let end-of-file reads that arrived with this connection run first: a client that
        # closed one connection before opening the next was never holding both.
        for _ in range(3):
            await asyncio.sleep(0)
        with self._changed:
            self.accepted += 1
            self.links.append(link)
            opened = sum(not (each.closed or each.client_gone) for each in self.links)
            self.peak_open = max(self.peak_open, opened)
            self._held = [held for held in self._held if held.client_connected()]
            self._held.append(link)
            self.peak = max(self.peak, len(self._held))
            self._changed.notify_all()
        try:
            await self._serve(link, reader)
        except (OSError, asyncio.IncompleteReadError):
            pass  # a reset on either side ends the link; that is the point of some modes
        finally:
            link.reset()
            with self._changed:
                link.closed = True
                self._changed.notify_all()
            self._client_gone(link)
            self._tasks.discard(task)

    async def _serve(self, link: Link, reader: asyncio.StreamReader) -> None:
        if self.mode == "cut":
            return
        if self.mode == "blackhole":
            # Read and drop: the client sees an open connection that never answers.
            while await reader.read(CHUNK):
                self._heard(link, "client")
            link.client_gone = True
            self._client_gone(link)
            return
        upstream_reader, link.upstream = await asyncio.open_connection(*self.target)
        await asyncio.gather(
            self._forward_requests(link, reader, link.upstream),
            self._forward_replies(link, upstream_reader, link.client),
            return_exceptions=True,
        )

    def _client_gone(self, link: Link) -> None:
        with self._changed:
            link.client_gone = True

    def _heard(self, link: Link, speaker: str) -> None:
        with self._changed:
            link.heard_from(speaker)
            self._changed.notify_all()

    async def _forward_requests(
        self, link: Link, reader: asyncio.StreamReader, upstream: asyncio.StreamWriter
    ) -> None:
        try:
            while data := await reader.read(CHUNK):
                self._heard(link, "client")
                upstream.write(data)
                await upstream.drain()
            link.client_gone = True
            self._client_gone(link)
        finally:
            upstream.close()

    async def _forward_replies(
        self, link: Link, reader: asyncio.StreamReader, client: asyncio.StreamWriter
    ) -> None:
        """Forward each chunk ``delay`` after it arrived, in order: added latency, not a
        bandwidth limit, so a reply in several chunks is late once, not once per chunk."""
        loop = asyncio.get_running_loop()
        due: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue()

        async def deliver() -> None:
            while (item := await due.get()) is not None:
                at, data = item
                if (wait := at - loop.time()) > 0:
                    await asyncio.sleep(wait)
                client.write(data)
                await client.drain()

        sender = asyncio.create_task(deliver())
        first = True
        try:
            while data := await reader.read(CHUNK):
                self._heard(link, "server")
                # Later chunks queue behind a held first one: order is kept either way.
                held = self.mode == "delay" or (first and self.mode == "slow_start")
                due.put_nowait((loop.time() + (self.delay if held else 0.0), data))
                first = False
        finally:
            due.put_nowait(None)
            try:
                await sender
            finally:
                client.close()
