"""The MQTT sink: a JSON state document per module and per stack each cycle, committed to its own queue in the
spool and published in order with QoS 1 by a thread of its own, so a broker outage of any length loses nothing;
plus Home Assistant discovery (`ha_discovery`). Needs paho-mqtt 2.x (the `mqtt` extra)."""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import socket
import ssl
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...errors import PylonbusError
from ...readings.documents import path_of, reading_state
from ...store.backlog import Backlog
from .discovery import Discovery
from .settings import broker, topic_problem

if TYPE_CHECKING:
    from ...readings.reading import Reading
    from ...store.spool import Spool
    from .config import MqttConfig

log = logging.getLogger("pylon2influx")

CHUNK = 1000  # messages published before their acknowledgements are awaited
RECONNECT_MAX = 5  # s between two attempts while the broker is away
RETAINED_WAIT = 2.0  # s after subscribing: the broker has sent its retained configs
REFUSED_RETRY = 60  # s between two attempts while the broker refuses us (credentials, not authorised)
KEEPALIVE = 30  # s; also how long paho waits for the broker's answer to CONNECT


# A backlog repeats the same few topics: each is checked once (a character at a time, it was a fifth of a replay).
_topic_problem = functools.lru_cache(maxsize=4096)(topic_problem)


# json.dumps with any argument builds a new encoder each call: 5.5 of a document's 31 us, 15 documents a cycle.
_compact = json.JSONEncoder(separators=(",", ":")).encode


def _payload(doc: dict[str, Any]) -> str:
    """A document as it is published: compact JSON, made once (the spool keeps it so)."""
    return _compact(doc)


def packet_size(topic: str, payload: str) -> int:
    """Bytes of an MQTT 5 PUBLISH with QoS 1 and no properties, as a broker's maximum packet size counts them."""
    remaining = 2 + len(topic.encode()) + 2 + 1 + len(payload.encode())  # topic, packet id, properties length
    length_bytes = next(n for n in range(1, 5) if remaining < 128**n)
    return 1 + length_bytes + remaining


def _paho() -> Any:
    try:
        import paho.mqtt.client as client
    except ImportError:
        # pylonbus is not on the package index yet, but paho-mqtt is: name the pip of this program's environment.
        pip = Path(sys.prefix) / "bin" / "pip"
        raise PylonbusError(f"--mqtt needs paho-mqtt 2: {pip} install 'paho-mqtt>=2.1'") from None
    return client


class MqttSink:
    spooling = True

    def __init__(self, config: MqttConfig, queue: Spool, interval: float) -> None:
        paho = _paho()
        self.config = config
        self.host, self.port, tls, user = broker(config.url)
        self.backlog = Backlog(queue)
        self.status_topic = f"{config.prefix}/status"
        self.discovery = Discovery(config.prefix, config.ha_prefix, self.status_topic) if config.discovery else None
        self.connected = threading.Event()
        self.answered = threading.Event()  # the broker accepted or refused us: no use waiting longer
        self.wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._announce = False  # discovery to (re)send: new device, connect, or Home Assistant restarted
        self._refused = False
        self._unreachable = False  # said once per outage
        self._silent = False  # the broker took the connection and did not answer CONNECT: said once per outage
        self._was_connected = False
        self.interval = interval
        self.sent = 0
        self.skipped = 0  # spooled messages to a topic MQTT does not allow
        self.oversized = 0  # messages larger than the broker takes
        self.max_packet: int | None = None  # bytes, from the broker's CONNACK
        self._cleanup_after: float | None = None  # monotonic s; set by start() where --ha-cleanup is asked for
        self._found: dict[str, str] = {}  # retained config on the broker whose state topic is ours -> that topic
        client = paho.Client(
            paho.CallbackAPIVersion.VERSION2,
            client_id=f"pylonbus-{socket.gethostname()}-{os.getpid()}",
            # MQTT 5: the broker's CONNACK says the largest packet it takes, so a message it would drop the
            # connection for (and paho would send again at every reconnect) is known before it is sent.
            protocol=paho.MQTTv5,
        )
        client.max_inflight_messages_set(100)
        client.reconnect_delay_set(1, RECONNECT_MAX)
        client.will_set(self.status_topic, "offline", qos=1, retain=True)
        if user is not None:
            client.username_pw_set(user, config.password)
        if tls:
            client.tls_set(
                ca_certs=None if config.ca_file is None else str(config.ca_file),
                cert_reqs=ssl.CERT_REQUIRED if config.verify_tls else ssl.CERT_NONE,
            )
            client.tls_insecure_set(not config.verify_tls)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        self.client = client
        log.info("publishing to MQTT %s:%d under %s/, spool queue %s", self.host, self.port, config.prefix, queue.name)

    # paho's network thread
    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if reason.is_failure:
            if not self._refused and "protocol version" in str(reason).lower():
                log.error(
                    "MQTT broker %s:%d does not speak MQTT 5 (%s), which the daemon needs to learn the largest "
                    "message it takes: use Mosquitto 1.6 or later, EMQX, HiveMQ or RabbitMQ 3.13 or later "
                    "(retrying every %d s)",
                    self.host,
                    self.port,
                    reason,
                    REFUSED_RETRY,
                )
            elif not self._refused:
                log.error(
                    "MQTT broker %s:%d refused the connection: %s; check the user in --mqtt and MQTT_PASSWORD "
                    "or --mqtt-password-file (retrying every %d s)",
                    self.host,
                    self.port,
                    reason,
                    REFUSED_RETRY,
                )
            self._refused = True
            self.answered.set()
            client.reconnect_delay_set(REFUSED_RETRY, REFUSED_RETRY)
            return
        if self._refused or self._unreachable or self._silent or self._was_connected:
            log.warning("MQTT broker %s:%d connected again", self.host, self.port)
        else:
            log.info("MQTT broker %s:%d connected", self.host, self.port)
        self._refused = self._unreachable = self._silent = False
        self._was_connected = True
        self.max_packet = getattr(properties, "MaximumPacketSize", None)
        client.reconnect_delay_set(1, RECONNECT_MAX)
        client.publish(self.status_topic, "online", qos=1, retain=True)
        if self.discovery is not None:
            client.subscribe(f"{self.config.ha_prefix}/status", qos=1)
            self._announce = True
        if self._cleanup_after is not None:
            client.subscribe(f"{self.config.ha_prefix}/+/+/+/config", qos=1)
            self._cleanup_after = max(self._cleanup_after, time.monotonic() + RETAINED_WAIT)
        self.connected.set()
        self.answered.set()
        self.wake.set()

    def _on_connect_fail(self, client: Any, userdata: Any) -> None:
        # paho calls this inside its `except OSError`: the error at hand says why.
        error = sys.exc_info()[1]
        if isinstance(error, ssl.SSLCertVerificationError):
            if not self._refused:
                log.error(
                    "MQTT broker %s:%d: its TLS certificate is not trusted (%s); give its CA with --ca-file, or -I 0 "
                    "to skip the check (retrying every %d s)",
                    self.host,
                    self.port,
                    error.verify_message,
                    REFUSED_RETRY,
                )
            self._refused = True
            self.answered.set()
            client.reconnect_delay_set(REFUSED_RETRY, REFUSED_RETRY)
            return
        if not self._unreachable:
            log.warning(
                "MQTT broker %s:%d unreachable (%s); readings are spooled, retrying every %d s",
                self.host,
                self.port,
                error or "no answer",
                RECONNECT_MAX,
            )
        self._unreachable = True

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if self.connected.is_set() and not self._stop.is_set():
            log.warning(
                "MQTT broker %s:%d lost (%s); readings are spooled until it is back", self.host, self.port, reason
            )
        elif not (self._silent or self._refused or self._stop.is_set()):
            # paho gives up on a CONNECT the broker does not answer once the keep-alive has passed.
            log.warning(
                "MQTT broker %s:%d took the connection but did not answer CONNECT within %d s (%s): is it an MQTT "
                "broker, and does it want TLS (mqtts://)? Readings are spooled, retrying",
                self.host,
                self.port,
                KEEPALIVE,
                reason,
            )
            self._silent = True
        self.connected.clear()

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        if message.topic.endswith("/status") and message.payload == b"online":  # Home Assistant (re)started
            self._announce = True
            self.wake.set()
        elif message.topic.endswith("/config") and message.retain and message.payload:
            with contextlib.suppress(ValueError, AttributeError):
                state = json.loads(message.payload).get("state_topic", "")
                if state.startswith(f"{self.config.prefix}/"):
                    self._found[message.topic] = state

    # the poller's thread
    def start(self) -> None:
        if self.config.cleanup and self.discovery is not None:
            # A module that missed the start-up scan is probed again `rescan` s after the start and published
            # within the next cycle: only a module unseen for that long is taken as gone.
            self._cleanup_after = time.monotonic() + self.config.rescan + 2 * self.interval
        self.client.connect_async(self.host, self.port, keepalive=KEEPALIVE)
        self.client.loop_start()
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
        if self.backlog.put(json.dumps(messages).encode(), len(messages)):
            self.wake.set()

    # the shipper thread
    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if not self.connected.is_set() or not self._ship():
                    self.wake.wait(1.0)
                    self.wake.clear()
            except Exception as error:  # the thread must outlive any fault; the batches stay spooled
                log.error("MQTT: %s: %s; the readings stay spooled, retrying in 10 s", type(error).__name__, error)
                log.debug("MQTT shipper fault", exc_info=True)
                self._stop.wait(10)

    def _ship(self, deadline: float | None = None) -> bool:
        """Publish discovery if due, then the oldest batches; True when batches went out."""
        if self._announce and self.discovery is not None:
            self._announce = False
            configs = [m for m in self.discovery.configs() if self._fits(*m)]
            self._wait([self.client.publish(t, p, qos=1, retain=True) for t, p in configs], deadline)
        if self._cleanup_after and time.monotonic() > self._cleanup_after and self.discovery and self.discovery.modules:
            self._cleanup()
        spool = self.backlog.spool
        batches = spool.oldest(CHUNK)
        if not batches:
            return False
        messages = [message for _, _, body in batches for message in self._publishable(body)]
        # Only the newest state of a topic is retained: a replayed backlog is history, not the present.
        last = {} if spool.pending() > len(batches) else {topic: n for n, (topic, _) in enumerate(messages)}
        infos = [
            self.client.publish(topic, payload, qos=1, retain=last.get(topic) == n)
            for n, (topic, payload) in enumerate(messages)
        ]
        if not self._wait(infos, deadline):
            return False
        # Deleted with the next commit (the next cycle's batches): a crash before it sends them again (QoS 1).
        spool.remove([batch_id for batch_id, _, _ in batches], defer=True)
        self.sent += len(messages)
        return True

    def _publishable(self, body: bytes) -> list[tuple[str, str]]:
        """A batch's messages less those to a topic MQTT does not allow (an older version spooled its prefix
        unchecked) and those larger than the broker takes: the broker (or paho) would refuse such a message at
        every attempt, holding up the queue."""
        kept = []
        for topic, payload in json.loads(body):
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
        if self.max_packet is None:
            return True
        size = packet_size(topic, payload)
        if size <= self.max_packet:
            return True
        if not self.oversized:
            log.warning(
                "MQTT broker %s:%d takes packets of at most %d bytes (its max_packet_size); a message of %d bytes "
                "to %s is not published, nor is any other too large (counted in the statistics): raise the "
                "broker's max_packet_size",
                self.host,
                self.port,
                self.max_packet,
                size,
                topic,
            )
        self.oversized += 1
        return False

    def _cleanup(self) -> None:
        """Empty the retained configs of modules this run has not seen (Home Assistant removes their devices),
        and their retained states, unless a module seen now publishes to the same address."""
        assert self.discovery is not None
        self._cleanup_after = None
        self.client.unsubscribe(f"{self.config.ha_prefix}/+/+/+/config")
        ours = self.discovery.nodes()
        # <ha_prefix>/<component>/<node>/<object>/config, where the prefix may have levels of its own
        gone = {
            topic: state
            for topic, state in self._found.items()
            if topic[len(self.config.ha_prefix) + 1 :].split("/")[1] not in ours and "_stack_" not in topic
        }
        states = sorted(set(gone.values()) - self.discovery.state_topics())
        self._wait([self.client.publish(topic, b"", qos=1, retain=True) for topic in [*sorted(gone), *states]], None)
        log.info(
            "--ha-cleanup: removed %d entities and %d retained states of modules not seen for %g s",
            len(gone),
            len(states),
            self.config.rescan + 2 * self.interval,
        )

    def _wait(self, infos: list[Any], deadline: float | None) -> bool:
        """Until the broker has acknowledged every message (paho sends them again after a reconnect)."""
        try:
            for info in infos:
                while not info.is_published():
                    if self._stop.is_set() and (deadline is None or time.monotonic() > deadline):
                        return False
                    info.wait_for_publish(0.5)
        except (RuntimeError, ValueError) as error:  # the connection dropped as they were handed over
            log.debug("MQTT publish interrupted: %s; the batches stay spooled", error)
            return False
        return True

    def statistics(self) -> str:
        state = "connected" if self.connected.is_set() else "not connected"
        skipped = f", skipped (invalid topic): {self.skipped}" if self.skipped else ""
        skipped += f", skipped (larger than the broker takes): {self.oversized}" if self.oversized else ""
        return f"MQTT {state}, published: {self.sent}{skipped}, {self.backlog.describe()}"

    def close(self, seconds: float) -> int:
        """Send what is queued for at most `seconds`, say `offline`, disconnect; how many batches are left."""
        deadline = time.monotonic() + seconds
        self._stop.set()
        self.wake.set()
        if self._thread is not None:
            self._thread.join(max(0.0, deadline - time.monotonic()))
        if self._thread is None:  # --once: connect for this one flush
            self.client.connect_async(self.host, self.port, keepalive=KEEPALIVE)
            self.client.loop_start()
        self.answered.wait(max(0.0, deadline - time.monotonic()))
        while self.connected.is_set() and time.monotonic() < deadline and self._ship(deadline):
            pass
        if self.connected.is_set():
            info = self.client.publish(self.status_topic, "offline", qos=1, retain=True)
            info.wait_for_publish(max(0.1, deadline - time.monotonic()))
        self.client.disconnect()
        self.client.loop_stop()
        left = self.backlog.spool.pending() + len(self.backlog.unspooled)
        if left:
            log.info("%d MQTT batch(es) stay in the spool for the next start", left)
        return left
