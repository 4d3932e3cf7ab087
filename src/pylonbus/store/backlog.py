"""What a shipping sink still has to send: the batches in its spool queue and, while the spool refuses writes
(read-only, failing disk), a bounded queue in memory that is committed, in order, once the spool works again."""

from __future__ import annotations

import collections
import logging
from functools import partial

from .spool import Spool, SpoolError

log = logging.getLogger("pylon2influx")


class Backlog:
    def __init__(self, spool: Spool) -> None:
        self.spool = spool
        self.unspooled: collections.deque[tuple[bytes, int]] = collections.deque()  # oldest first

    def put(self, body: bytes, lines: int) -> bool:
        """Commit the batch, and any the spool refused before, in the order they were taken; False when they
        stay in memory."""
        failing = bool(self.unspooled)
        self.unspooled.append((body, lines))
        while len(self.unspooled) > self.spool.limit:
            self.unspooled.popleft()
            log.warning("spool unusable and %d batches held in memory: dropped the oldest", self.spool.limit)
        try:
            while self.unspooled:
                self.spool.add(*self.unspooled[0])
                # Back in memory if the cycle's transaction does not commit after all
                self.spool.on_rollback(partial(self.unspooled.appendleft, self.unspooled.popleft()))
        except SpoolError as error:
            if not failing:
                log.error("%s; batches are held in memory until the spool works again", error)
            return False
        if failing:
            log.warning("spool %s works again; the batches held in memory are committed", self.spool.path)
        return True

    def describe(self) -> str:
        """The queue's part of a statistics line."""
        try:
            stored = f"spooled: {self.spool.pending()}, dropped: {self.spool.counter('dropped')}"
        except SpoolError as error:
            stored = f"spool unusable ({error})"
        return f"{stored}, held in memory: {len(self.unspooled)}"
