"""One writer thread per process that stores queued items in batches, off the probe's path.

The history and the readiness both receive every probe outcome on a probe thread, which
must never wait for the shared cache. ``BatchWriter.put`` only queues the item; the
writer thread, started on first use (so a forked worker starts its own), lets items
gather for ``batch_seconds`` and hands them to ``store`` at once. Items stay listed by
``waiting()`` until ``store`` returned, so readers can fold in what is not stored yet.
``flush`` waits, bounded, until everything queued so far is stored; each writer is
flushed at exit. When the cache is stuck, at most ``max_queued`` items wait and the
oldest go first.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import weakref
from collections.abc import Callable
from typing import Generic, TypeVar

Item = TypeVar("Item")

logger = logging.getLogger(__name__)

EXIT_FLUSH_SECONDS = 2.0

_writers: weakref.WeakSet[BatchWriter[object]] = weakref.WeakSet()


class BatchWriter(Generic[Item]):
    def __init__(
        self,
        name: str,
        store: Callable[[list[Item]], None],
        *,
        batch_seconds: float,
        max_queued: int,
    ) -> None:
        self.name = name
        self.store = store
        self.batch_seconds = batch_seconds
        self.max_queued = max_queued
        self._reset()
        _writers.add(self)  # type: ignore[arg-type]

    def _reset(self) -> None:
        # Also what a forked child starts from: the parent's queue is the parent's to store.
        self.changed = threading.Condition()
        self.queued: list[tuple[int, Item]] = []
        self.last_queued = 0
        self.last_done = 0
        self.flushing = 0
        self.thread: threading.Thread | None = None

    def put(self, item: Item) -> None:
        with self.changed:
            self.last_queued += 1
            self.queued.append((self.last_queued, item))
            del self.queued[: -self.max_queued]
            if self.thread is None:
                self.thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                self.thread.start()
            self.changed.notify_all()

    def waiting(self) -> list[Item]:
        """What is queued and not stored yet, oldest first."""
        with self.changed:
            return [item for _, item in self.queued]

    def _run(self) -> None:
        while True:
            with self.changed:
                self.changed.wait_for(lambda: bool(self.queued))
                # A burst of outcomes becomes one batch; a flush does not wait for more.
                self.changed.wait_for(lambda: self.flushing > 0, timeout=self.batch_seconds)
                batch = list(self.queued)
            try:
                self.store([item for _, item in batch])
            except Exception:  # never let the thread die: the flushes would wait in vain
                logger.exception("%s: %d queued items were lost", self.name, len(batch))
            with self.changed:
                done = batch[-1][0]
                self.queued = [entry for entry in self.queued if entry[0] > done]
                self.last_done = max(self.last_done, done)
                self.changed.notify_all()

    def flush(self, timeout: float) -> bool:
        """Wait until every item queued so far is stored; False if ``timeout`` ran out."""
        with self.changed:
            target = self.last_queued
            self.flushing += 1
            self.changed.notify_all()
            try:
                return self.changed.wait_for(lambda: self.last_done >= target, timeout=timeout)
            finally:
                self.flushing -= 1


def _reset_in_child() -> None:
    for writer in list(_writers):
        writer._reset()


def _flush_all() -> None:
    for writer in list(_writers):
        writer.flush(EXIT_FLUSH_SECONDS)


os.register_at_fork(after_in_child=_reset_in_child)
atexit.register(_flush_all)
