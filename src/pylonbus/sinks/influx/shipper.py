"""Moves spooled batches to a sink: oldest first, many per request, with back-off and a quarantine for
batches the server refuses as malformed."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from ...store.spool import Spool, SpoolError
from .writer import Outcome, Writer

log = logging.getLogger(__name__)

MIN_BACKOFF = 1.0  # s; also when a server asks for less (Retry-After: 0 made 1,500 requests a second)
MAX_BACKOFF = 300.0
MISCONFIGURED_RETRY = 60.0
FAULT_RETRY = 10.0
# s an empty spool is waited on before it is looked at anyway. Every batch spooled and every stop sets `wake`:
# this only bounds what a missed one could cost. Looking every second cost 0.5 ms of CPU a look (0.3 % of a
# core at 5 s a cycle, a third of the daemon's CPU there).
IDLE_WAIT = 30.0


# Plain counters, like the simulator's fault rates: a dataclass of numbers starting at 0.
@dataclass
class ShipperStats:
    sent_batches: int = 0
    sent_lines: int = 0
    failures: int = 0
    rejected: int = 0


class Shipper:
    def __init__(
        self, spool: Spool, sink: Writer, batch_lines: int = 5000, accepted: Callable[[bytes], None] | None = None
    ) -> None:
        self.spool = spool
        self.sink = sink
        self.accepted = accepted  # told each body the server took (the change filter counts only those)
        self.batch_lines = batch_lines
        self.stats = ShipperStats()
        self.wake = threading.Event()  # set when a new batch is spooled
        self._failures_in_a_row = 0
        self._failing: str | None = None  # the failure logged: its repeats are counted, not logged
        self._refusal: str | None = None  # the server's reason for the last batch it refused, logged once
        # While a backlog drains, the batches of one request are deleted while the next one travels (the
        # deletion's journal and fsync cost a tenth of a drain when done in between).
        self._settle = threading.Event()
        threading.Thread(target=self._remover, name="spool-remover", daemon=True).start()

    def send_pending(self) -> Outcome | None:
        """Send one request's worth of the oldest batches. None when that went (or there was nothing);
        otherwise the outcome that says why the batches stay in the spool."""
        batches = self.spool.oldest(self.batch_lines)
        if not batches:
            return None
        if self.spool.deferred:  # none in a steady state: the cycle's commit deleted them (no wake-up for nothing)
            self._settle.set()
        return self._send(batches)

    def _remover(self) -> None:
        failing = False
        while True:
            self._settle.wait()
            self._settle.clear()
            try:
                self.spool.settle()
                failing = False
            except Exception as error:  # the batches stay marked sent; the next request or exit tries again
                if not failing:
                    log.warning("deleting sent batches failed: %s; trying again with the next request", error)
                failing = True

    def _send(self, batches: list[tuple[int, int, bytes]]) -> Outcome | None:
        request = b"\n".join(body for _, _, body in batches)
        outcome = self.sink.write(request)
        lines = sum(count for _, count, _ in batches)
        if outcome.ok:
            self.spool.remove([batch_id for batch_id, _, _ in batches], defer=True)
            if self.accepted is not None:
                self.accepted(request)
            self.stats.sent_batches += len(batches)
            self.stats.sent_lines += lines
            if self._failures_in_a_row:
                log.warning(
                    "database reachable again after %d failed post(s); %d batch(es) still spooled",
                    self._failures_in_a_row,
                    self.spool.pending(),
                )
            self._failures_in_a_row = 0
            self._failing = None
            return None
        if outcome.too_large and lines > 1 and lines // 2 < self.batch_lines:
            self.batch_lines = lines // 2  # the server's limit is below this: stay under it from now on
            log.warning("database refused %d lines as too large (HTTP 413); sending %d at most", lines, lines // 2)
        if outcome.malformed or outcome.too_large:
            if len(batches) > 1:  # halve until the culprit (or the size limit) is found
                middle = len(batches) // 2
                return self._send(batches[:middle]) or self._send(batches[middle:])
            batch_id = batches[0][0]
            if outcome.too_large and self.spool.split(batch_id):
                return None  # its halves are sent next
            self.spool.reject(batch_id, outcome.status, outcome.message)
            self.stats.rejected += 1
            if outcome.message != self._refusal:  # a schema conflict refuses every batch for the same reason
                self._refusal = outcome.message
                log.error(
                    "server refused a batch with HTTP %d (%s); it is kept in the spool's 'rejected' table, and "
                    "further batches refused for this reason are counted, not logged",
                    outcome.status,
                    outcome.message,
                )
            return None
        self.stats.failures += 1
        self._failures_in_a_row += 1
        return outcome

    def delay_after(self, outcome: Outcome) -> float:
        """Exponential from MIN_BACKOFF; a Retry-After can lengthen the wait, never shorten it."""
        backoff = max(MIN_BACKOFF, min(2.0 ** (self._failures_in_a_row - 1), MAX_BACKOFF))
        if outcome.retry_after is not None:
            return min(max(outcome.retry_after, backoff), MAX_BACKOFF)
        if outcome.misconfigured:
            return MISCONFIGURED_RETRY
        return backoff

    def run(self, stop: threading.Event) -> None:
        """Ship until `stop` is set: right away while a backlog remains, on `wake` when it is empty. A failing
        spool (disk full, I/O error) is logged and retried; it never ends the thread."""
        failing: str | None = None  # the last error that stopped sending, logged once
        while not stop.is_set():
            try:
                delay = self._step()
            except Exception as error:  # the thread that empties the spool must outlive every fault
                text = f"{error}" if isinstance(error, SpoolError) else f"{type(error).__name__}: {error}"
                if text != failing:
                    log.error("%s; sending waits and retries every %.0f s", text, FAULT_RETRY)
                    log.debug("shipper fault", exc_info=True)
                failing = text
                stop.wait(FAULT_RETRY)
                continue
            if failing is not None:
                log.warning("sending to the database resumes")
                failing = None
            if delay:
                stop.wait(delay)

    def flush(self, seconds: float) -> int:
        """Send what is spooled for at most `seconds` (on exit); the number of batches left behind."""
        deadline = time.monotonic() + seconds
        try:
            while self.spool.pending() and time.monotonic() < deadline:
                outcome = self.send_pending()
                if outcome is not None:
                    log.error("database write failed (%s): %s; the batches stay spooled", outcome.what, outcome.message)
                    break
            self.spool.settle()
        except Exception as error:  # exiting anyway: what is left stays in the spool
            log.warning("sending on exit stopped: %s", error)
        return self.spool.pending()

    def _step(self) -> float:
        """Send once, or wait for a batch while the spool is empty; the time to wait before the next try."""
        outcome = self.send_pending()
        if outcome is None:
            if self.spool.pending() == 0:
                self.wake.wait(IDLE_WAIT)
                self.wake.clear()
            return 0.0
        delay = self.delay_after(outcome)
        if outcome.what == self._failing:
            return delay  # counted in failed posts, and told when the database takes data again
        self._failing = outcome.what
        if outcome.misconfigured:
            log.error(
                "database answered HTTP %d: %s — check the token, org, bucket or database name "
                "(data is kept; retrying in %.0f s)",
                outcome.status,
                outcome.message,
                delay,
            )
        else:
            log.warning(
                "cannot write to the database (%s: %s); %d batch(es) spooled, retrying in %.0f s and "
                "backing off up to %.0f s (repeats are counted, not logged)",
                outcome.what,
                outcome.message,
                self.spool.pending(),
                delay,
                MAX_BACKOFF,
            )
        return delay
