"""The MQTT sink: a JSON state document per module and per stack each cycle, committed to its own queue in the
spool (compressed: `batch`) and published in order with QoS 1 by a thread of its own, so a broker outage of any
length loses nothing; plus Home Assistant discovery (`ha_discovery`). Speaks MQTT 5 itself (`client.py`)."""

from __future__ import annotations

import functools
import json
import logging
import os
import socket
import threading
import time
import zlib
from itertools import chain
from typing import TYPE_CHECKING, Any

from ...readings.documents import path_of, reading_state
from ...store.backlog import Backlog
from ...store.spool import SpoolError
from ...wakeup import Wakeup
from .. import tls_context
from . import packets
from .client import CONNECT_TIMEOUT, Connection, Lost, Refused, Silent
from .discovery import Discovery
from .settings import broker, topic_problem

if TYPE_CHECKING:
    from collections.abc import Callable

    from ...readings.reading import Reading
    from ...store.spool import Spool
    from .config import MqttConfig

log = logging.getLogger("pylon2influx")

CHUNK = 1000  # messages read from the spool at a time (whole batches: at least one)
RECONNECT_FIRST = 1.0  # s before the first new attempt after a loss, doubling to
RECONNECT_MAX = 5.0  # s between two attempts while the broker is away
RETAINED_WAIT = 2.0  # s after subscribing: the broker has sent its retained configs
REFUSED_RETRY = 60.0  # s between two attempts while the broker refuses us (credentials, not authorised)
KEEPALIVE = 30  # s; also how long the broker has to answer CONNECT
IDLE_WAIT = 60.0  # s the thread sleeps at most when nothing is to do (a spooled reading wakes it)
BACKLOG = 10  # batches waiting from which the next are compressed (`batch`): the broker is away or slow
PLAIN = b"\0"  # the first byte of a batch kept as it is (a compressed one starts with zlib's header, JSON with [)


# A backlog repeats the same few topics: each is checked once (a character at a time, it was a fifth of a replay).
_topic_problem = functools.lru_cache(maxsize=4096)(topic_problem)


_compact: Callable[[Any], str]
try:  # a tenth of the standard library's time: 15 documents a cycle at 14 modules, 0.27 -> 0.03 ms (warm)
    from orjson import dumps as _dumps
except ImportError:  # a platform without its wheel (armv6): the same values (`1e-06` where orjson has `1e-6`)
    # json.dumps with any argument builds a new encoder each call: 5.5 of a document's 31 us.
    _compact = json.JSONEncoder(separators=(",", ":")).encode
else:

    def _compact(value: Any) -> str:
        return _dumps(value).decode()


# A module's `alarms`, encoded once for each set of values they take (they seldom change).
_encoded_alarms = functools.lru_cache(maxsize=1024)(lambda items: _compact(dict(items)))


def _payload(doc: dict[str, Any]) -> str:
    """A document as it is published: compact JSON, made once (the spool keeps it so). Its `alarms` come last,
    encoded once for each set of values they take: half a module's document, a third of its encoding time."""
    alarms = doc.get("alarms")
    if not isinstance(alarms, dict) or len(doc) == 1:
        return _compact(doc)
    rest = doc.copy()
    del rest["alarms"]
    return f'{_compact(rest)[:-1]},"alarms":{_encoded_alarms(tuple(alarms.items()))}}}'


def batch(messages: list[tuple[str, str]], compress: bool) -> bytes:
    """A cycle's messages as the spool keeps them: each topic and payload in turn, NUL between them (no topic
    holds one, `topic_problem`, and JSON escapes it); as they are (after PLAIN) while the broker keeps up, else
    compressed. Documents repeat their keys: 14 modules' batch is 2.4 kB compressed, not 17 (two days' outage at
    1 s, 0.4 GB of the SD card, not 3); compressing every cycle's batch measured 2 % more of the daemon's CPU
    than keeping it as it is."""
    text = "\0".join(chain.from_iterable(messages)).encode()
    if not compress:
        return PLAIN + text
    # A 16 kB window and a small hash table: zlib's default state (256 kB) cost more to set up than the work.
    packer = zlib.compressobj(1, zlib.DEFLATED, 14, 4)
    return packer.compress(text) + packer.flush()


def unbatch(body: bytes) -> list[tuple[str, str]]:
    """The messages of a spooled batch (an earlier version's too: a JSON list of [topic, payload]). Raises
    ValueError, TypeError or zlib.error for a body that is not one."""
    if body[:1] == b"[":
        return [(str(topic), str(payload)) for topic, payload in json.loads(body)]
    text = body[1:] if body[:1] == PLAIN else zlib.decompress(body)
    parts = text.decode().split("\0")
    return list(zip(parts[::2], parts[1::2], strict=True))


class MqttSink:
    spooling = True

    def __init__(self, config: MqttConfig, queue: Spool, interval: float) -> None:
        self.config = config
        self.host, self.port, tls, user = broker(config.url)
        self.tls = (
            tls_context(None if config.ca_file is None else str(config.ca_file), config.verify_tls) if tls else None
        )
        self.backlog = Backlog(queue)
        self.status_topic = f"{config.prefix}/status"
        self.discovery = Discovery(config.prefix, config.ha_prefix, self.status_topic) if config.discovery else None
        self.hello = packets.connect(
            f"pylonbus-{socket.gethostname()}-{os.getpid()}",
            KEEPALIVE,
            (self.status_topic, b"offline"),
            user,
            config.password if user is not None else None,
        )
        self.wakeup = Wakeup()
        self.connection: Connection | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._announce = False  # discovery to (re)send: new device, connect, or Home Assistant restarted
        self._refused = False
        self._unreachable = False  # said once per outage
        self._silent = False  # the broker took the connection and did not answer CONNECT: said once per outage
        self._was_connected = False
        self._retry = RECONNECT_FIRST
        self.interval = interval
        self.sent = 0
        self.skipped = 0  # spooled messages to a topic MQTT does not allow
        self.unreadable = 0  # spooled batches that are no batch (changed on the disk)
        self.oversized = 0  # messages larger than the broker takes
        self.declined = 0  # messages the broker acknowledged with an error
        self._cleanup_after: float | None = None  # monotonic s; set by start() where --ha-cleanup is asked for
        self._found: dict[str, str] = {}  # retained config on the broker whose state topic is ours -> that topic
        log.info("publishing to MQTT %s:%d under %s/, spool queue %s", self.host, self.port, config.prefix, queue.name)

    @property
    def max_packet(self) -> int | None:
        return None if self.connection is None else self.connection.max_packet

    def _connect(self, deadline: float | None) -> float:
        """Connect once; 0 when connected, else the seconds to wait before the next attempt (each outage said
        once). Waits for the broker's answer until stopping (and past `deadline` if one is given)."""
        try:
            connection = Connection.open(
                (self.host, self.port),
                self.tls,
                self.hello,
                KEEPALIVE,
                self.wakeup,
                self._on_message,
                self._on_declined,
                self._giving_up(deadline),
                CONNECT_TIMEOUT if deadline is None else max(0.1, min(CONNECT_TIMEOUT, deadline - time.monotonic())),
            )
        except Refused as error:
            if error.reason in packets.UNSUPPORTED_VERSION and not self._refused:
                log.error(
                    "MQTT broker %s:%d does not speak MQTT 5 (%s), which the daemon needs to learn the largest "
                    "message it takes: use Mosquitto 1.6 or later, EMQX, HiveMQ or RabbitMQ 3.13 or later "
                    "(retrying every %d s)",
                    self.host,
                    self.port,
                    error,
                    REFUSED_RETRY,
                )
            elif not self._refused:
                log.error(
                    "MQTT broker %s:%d refused the connection: %s; check the user in --mqtt and MQTT_PASSWORD "
                    "or --mqtt-password-file (retrying every %d s)",
                    self.host,
                    self.port,
                    error,
                    REFUSED_RETRY,
                )
            self._refused = True
            return REFUSED_RETRY
        except Silent:
            if not self._silent:
                log.warning(
                    "MQTT broker %s:%d took the connection but did not answer CONNECT within %d s: is it an MQTT "
                    "broker, and does it want TLS (mqtts://)? Readings are spooled, retrying",
                    self.host,
                    self.port,
                    KEEPALIVE,
                )
            self._silent = True
            return self._backoff()
        except (OSError, Lost) as error:
            if type(error).__name__ == "SSLCertVerificationError":
                if not self._refused:
                    log.error(
                        "MQTT broker %s:%d: its TLS certificate is not trusted (%s); give its CA with --ca-file, or "
                        "-I 0 to skip the check (retrying every %d s)",
                        self.host,
                        self.port,
                        getattr(error, "verify_message", error),
                        REFUSED_RETRY,
                    )
                self._refused = True
                return REFUSED_RETRY
            if not self._unreachable:
                log.warning(
                    "MQTT broker %s:%d unreachable (%s); readings are spooled, retrying every %d s",
                    self.host,
                    self.port,
                    error or type(error).__name__,
                    RECONNECT_MAX,
                )
            self._unreachable = True
            return self._backoff()
        if connection is None:  # stopping
            return 0.0
        if self._refused or self._unreachable or self._silent or self._was_connected:
            log.warning("MQTT broker %s:%d connected again", self.host, self.port)
        else:
            log.info("MQTT broker %s:%d connected", self.host, self.port)
        self._refused = self._unreachable = self._silent = False
        self._was_connected = True
        self._retry = RECONNECT_FIRST
        connection.publish([(self.status_topic, "online", True)], lambda: True)
        if self.discovery is not None:
            connection.subscribe(f"{self.config.ha_prefix}/status")
            self._announce = True
        if self._cleanup_after is not None:
            connection.subscribe(f"{self.config.ha_prefix}/+/+/+/config")
            self._cleanup_after = max(self._cleanup_after, time.monotonic() + RETAINED_WAIT)
        self.connection = connection
        return 0.0

    def _backoff(self) -> float:
        wait, self._retry = self._retry, min(2 * self._retry, RECONNECT_MAX)
        return wait

    def _lost(self, error: Lost) -> None:
        if not self._stop.is_set():
            log.warning(
                "MQTT broker %s:%d lost (%s); readings are spooled until it is back", self.host, self.port, error
            )
        if self.connection is not None:
            self.connection.close()
        self.connection = None

    # the connection's thread
    def _on_message(self, message: packets.Message) -> None:
        if message.topic.endswith("/status") and message.payload == b"online":  # Home Assistant (re)started
            self._announce = True
        elif message.topic.endswith("/config") and message.retain and message.payload:
            try:
                state = json.loads(message.payload).get("state_topic", "")
            except (ValueError, AttributeError):
                return
            if isinstance(state, str) and state.startswith(f"{self.config.prefix}/"):
                self._found[message.topic] = state

    def _on_declined(self, what: str, reason: int) -> None:
        if not self.declined:
            log.warning(
                "MQTT broker %s:%d declined %s: %s; check what the broker allows the user in --mqtt (its ACL); "
                "every such refusal is counted in the statistics",
                self.host,
                self.port,
                what,
                packets.reason_name(reason),
            )
        self.declined += 1

    # the poller's thread
    def start(self) -> None:
        if self.config.cleanup and self.discovery is not None:
            # A module that missed the start-up scan is probed again `rescan` s after the start and published
            # within the next cycle: only a module unseen for that long is taken as gone.
            self._cleanup_after = time.monotonic() + self.config.rescan + 2 * self.interval
        self._thread = threading.Thread(target=self._run, name="mqtt-shipper", daemon=True)
        self._thread.start()

    def publish(self, reading: Reading) -> None:
        messages = []
        prefix = self.config.prefix
        for stack in reading_state(reading)["stacks"]:
            for doc in stack["modules"]:
                messages.append((f"{prefix}/{path_of(doc)}/{doc['module']}/state", _payload(doc)))
            stack_doc = {key: value for key, value in stack.items() if key != "modules"}
            messages.append((f"{prefix}/{path_of(stack)}/stack/state", _payload(stack_doc)))
        if self.discovery is not None:
            for stack in reading.stacks:
                # Each noted, stack and modules alike (`or` would leave the stack out of the first announcement).
                new = [self.discovery.add_stack(stack), *map(self.discovery.add_module, stack.modules)]
                if any(new):
                    self._announce = True
        spool = self.backlog.spool
        try:
            waiting = spool.pending()
        except SpoolError:  # the batch is held in memory (`Backlog.put`), where small is best too
            waiting = BACKLOG
        if self.backlog.put(batch(messages, waiting >= BACKLOG), len(messages)):
            spool.on_commit(self.wakeup.set)  # once it can be read: woken earlier, it waits for the lock

    # the connection's thread
    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if self.connection is None:
                    self._stop.wait(self._connect(None))
                elif not self._ship():
                    self.connection.pump(self._idle())
            except Lost as error:
                self._lost(error)
                self._stop.wait(self._backoff())
            except Exception as error:  # the thread must outlive any fault; the batches stay spooled
                log.error("MQTT: %s: %s; the readings stay spooled, retrying in 10 s", type(error).__name__, error)
                log.debug("MQTT shipper fault", exc_info=True)
                self._stop.wait(10)

    def _idle(self) -> float:
        """How long the thread may wait for the broker: until a cleanup is due, or a reading wakes it."""
        if self._cleanup_after is None:
            return IDLE_WAIT
        return max(0.0, min(IDLE_WAIT, self._cleanup_after - time.monotonic()))

    def _giving_up(self, deadline: float | None) -> Callable[[], bool]:
        """A test of whether to stop waiting for the broker: once stopping, and past `deadline` if one is given."""
        return lambda: self._stop.is_set() and (deadline is None or time.monotonic() > deadline)

    def _ship(self, deadline: float | None = None) -> bool:
        """Publish discovery if due, then the oldest batches; True when more batches may be waiting. Raises Lost."""
        connection = self.connection
        assert connection is not None
        give_up = self._giving_up(deadline)
        if self._announce and self.discovery is not None:
            self._announce = False
            configs = (
                (topic, payload, True) for topic, payload in self.discovery.configs() if self._fits(topic, payload)
            )
            if not connection.publish(configs, give_up):
                return False
        if self._cleanup_after and time.monotonic() > self._cleanup_after and self.discovery and self.discovery.modules:
            self._cleanup(connection)
        spool = self.backlog.spool
        batches = spool.oldest(CHUNK)
        if not batches:
            return False
        messages = [message for _, _, body in batches for message in self._publishable(body)]
        # Only the newest state of a topic is retained: a replayed backlog is history, not the present.
        last = {} if spool.pending() > len(batches) else {topic: n for n, (topic, _) in enumerate(messages)}
        if not connection.publish(
            ((topic, payload, last.get(topic) == n) for n, (topic, payload) in enumerate(messages)), give_up
        ):
            return False
        # Deleted with the next commit (the next cycle's batches): a crash before it sends them again (QoS 1).
        spool.remove([batch_id for batch_id, _, _ in batches], defer=True)
        self.sent += len(messages)
        return spool.pending() > 0

    def _publishable(self, body: bytes) -> list[tuple[str, str]]:
        """A batch's messages less those to a topic MQTT does not allow (an older version spooled its prefix
        unchecked) and those larger than the broker takes: the broker would refuse such a message at every
        attempt, holding up the queue. A batch that cannot be read is none (said once, counted): retried, it
        would hold up the queue for ever."""
        try:
            messages = unbatch(body)
        except (ValueError, TypeError, zlib.error) as error:
            if not self.unreadable:
                log.warning(
                    "MQTT: a batch in the spool's queue %s cannot be read (%s: the disk changed it) and is "
                    "skipped; every such batch is skipped and counted in the statistics",
                    self.backlog.spool.name,
                    error,
                )
            self.unreadable += 1
            return []
        kept = []
        for topic, payload in messages:
            problem = _topic_problem(topic)
            if problem is None:
                if self._fits(topic, payload):
                    kept.append((topic, payload))
                continue
            if not self.skipped:
                log.warning(
                    "MQTT: a spooled message to %r is skipped: the topic %s (spooled by an earlier version); "
                    "every such message is skipped and counted in the statistics",
                    topic,
                    problem,
                )
            self.skipped += 1
        return kept

    def _fits(self, topic: str, payload: str) -> bool:
        """False, counted and said once, for a message larger than the broker's maximum packet size."""
        largest = self.max_packet
        if largest is None:
            return True
        size = packets.publish_size(topic, payload)
        if size <= largest:
            return True
        if not self.oversized:
            log.warning(
                "MQTT broker %s:%d takes packets of at most %d bytes (its max_packet_size); a message of %d bytes "
                "to %s is not published, nor is any other too large (counted in the statistics): raise the "
                "broker's max_packet_size",
                self.host,
                self.port,
                largest,
                size,
                topic,
            )
        self.oversized += 1
        return False

    def _cleanup(self, connection: Connection) -> None:
        """Empty the retained configs of modules this run has not seen (Home Assistant removes their devices),
        and their retained states, unless a module seen now publishes to the same address."""
        assert self.discovery is not None
        self._cleanup_after = None
        connection.unsubscribe(f"{self.config.ha_prefix}/+/+/+/config")
        ours = self.discovery.nodes()
        # <ha_prefix>/<component>/<node>/<object>/config, where the prefix may have levels of its own
        gone = {
            topic: state
            for topic, state in self._found.items()
            if topic[len(self.config.ha_prefix) + 1 :].split("/")[1] not in ours and "_stack_" not in topic
        }
        states = sorted(set(gone.values()) - self.discovery.state_topics())
        connection.publish([(topic, "", True) for topic in [*sorted(gone), *states]], self._giving_up(None))
        log.info(
            "--ha-cleanup: removed %d entities and %d retained states of modules not seen for %g s",
            len(gone),
            len(states),
            self.config.rescan + 2 * self.interval,
        )

    def statistics(self) -> str:
        state = "connected" if self.connection is not None else "not connected"
        skipped = f", skipped (invalid topic): {self.skipped}" if self.skipped else ""
        skipped += f", skipped (larger than the broker takes): {self.oversized}" if self.oversized else ""
        skipped += f", declined by the broker: {self.declined}" if self.declined else ""
        skipped += f", unreadable batches skipped: {self.unreadable}" if self.unreadable else ""
        return f"MQTT {state}, published: {self.sent}{skipped}, {self.backlog.describe()}"

    def close(self, seconds: float) -> int:
        """Send what is queued for at most `seconds`, say `offline`, disconnect; how many batches are left."""
        deadline = time.monotonic() + seconds
        self._stop.set()
        self.wakeup.set()
        thread = self._thread
        if thread is not None:
            thread.join(max(0.0, deadline - time.monotonic()))
        else:  # --once: connect for this one flush, as often as the time allows
            while self.connection is None and not self._refused:
                wait = self._connect(deadline)
                if self.connection is not None or time.monotonic() + wait >= deadline:
                    break
                time.sleep(wait)
        if thread is None or not thread.is_alive():  # else it is still in a connect or a write: let it be
            try:
                while self.connection is not None and time.monotonic() < deadline and self._ship(deadline):
                    pass
                if self.connection is not None:
                    until = max(deadline, time.monotonic() + 0.1)
                    self.connection.publish([(self.status_topic, "offline", True)], lambda: time.monotonic() > until)
                    self.connection.close(goodbye=True)
            except Lost as error:
                self._lost(error)
            self.connection = None
            self.wakeup.close()
        left = self.backlog.spool.pending() + len(self.backlog.unspooled)
        if left:
            log.info("%d MQTT batch(es) stay in the spool for the next start", left)
        return left
