"""A day of MQTT backlog replayed into a real Mosquitto, and the daemon's footprint with MQTT on.

1. The MQTT sink takes 24 h of readings at 5 s from 16 modules in two groups (17,280 cycles of 18 documents,
   16 modules and 2 stacks: 311,040 messages) into its spool queue while the broker is away; then it connects
   to mosquitto (Debian package `mosquitto`, started here on 127.0.0.1:18893) and publishes the backlog with
   QoS 1. Printed: the time until the queue is empty and the messages a subscriber counted; target: the day
   within 60 s. The anchor, run just before in the same process on the same broker: a bare paho-mqtt client
   publishing the same messages with QoS 1 (100 in flight; the sink keeps as many in flight as the broker's
   Receive Maximum allows) and waiting for every acknowledgement; target: our replay <= 1.1x its time.
2. `pylon2influx --mqtt` polling 16 modules (two groups, in-process simulator) every 5 s: peak resident memory
   after a minute; target < 50 MB.

Run: python benchmarks/mqtt.py [--replay-only] [--hours 24]"""

from __future__ import annotations

import collections
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import paho.mqtt.client as mqtt

from figures import report
from processes import SIXTEEN_MODULES, peak_rss_mb, pylon2influx
from pylonbus.readings.reading import Identity, ModuleReading, Reading, StackReading
from pylonbus.sim import Stack
from pylonbus.sinks.mqtt.config import MqttConfig
from pylonbus.sinks.mqtt.sink import MqttSink, unbatch
from pylonbus.store.spool import Spool

PORT = 18893
PERIOD = 5
# --hours N replays N hours instead of a day (quicker, for trying a change)
HOURS = float(sys.argv[sys.argv.index("--hours") + 1]) if "--hours" in sys.argv else 24.0
CYCLES = int(HOURS * 3600) // PERIOD
WATCH = 60.0


def start_broker(tmp: Path) -> subprocess.Popen[bytes]:
    config = tmp / "mosquitto.conf"
    config.write_text(f"user root\nlistener {PORT} 127.0.0.1\nallow_anonymous true\nmax_queued_messages 0\n")
    proc = subprocess.Popen(["mosquitto", "-c", str(config)], stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    return proc


def fill(sink: MqttSink) -> int:
    stack = Stack.parse(SIXTEEN_MODULES, seed=3)
    start_ns = (time.time_ns() // 10**9 - CYCLES * PERIOD) * 10**9
    for cycle in range(CYCLES):
        stack.advance(cycle * PERIOD)
        groups: dict[int, list[ModuleReading]] = {}
        for m in stack.modules.values():
            identity = Identity(model="US3000C", manufacturer="Pylon", serial=f"BENCH{m.group}{m.number:02d}")
            groups.setdefault(m.group, []).append(ModuleReading(m.group, m.number, m.pack(), identity=identity))  # type: ignore[arg-type]
        sink.publish(Reading(start_ns + cycle * PERIOD * 10**9, [StackReading(g, ms) for g, ms in groups.items()]))
    return sink.backlog.spool.pending()


def messages_per_cycle() -> int:
    stack = Stack.parse(SIXTEEN_MODULES)
    return len(stack.modules) + len({m.group for m in stack.modules.values()})  # a document a module and a stack


def raw_publish(messages: list[tuple[str, str]]) -> tuple[float, float]:
    """Seconds for a bare paho client to publish `messages` with QoS 1 and have every one acknowledged (to topics
    of the same length under another prefix, which the replay's subscriber does not count)."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.max_inflight_messages_set(100)  # as the sink's
    client.connect("127.0.0.1", PORT)
    client.loop_start()
    time.sleep(0.5)
    started, cpu = time.perf_counter(), time.process_time()
    # paho numbers messages up to 65,535: at most 50,000 unacknowledged at a time, the oldest awaited first.
    infos: collections.deque[mqtt.MQTTMessageInfo] = collections.deque()
    for topic, payload in messages:
        if len(infos) == 50_000:
            infos.popleft().wait_for_publish()
        infos.append(client.publish("raw00" + topic[5:], payload, qos=1))
    for info in infos:
        info.wait_for_publish()
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    client.disconnect()
    client.loop_stop()
    return seconds, cpu


def replay(tmp: Path) -> None:
    spool = Spool(tmp / "spool.sqlite", CYCLES).queue("mqtt", CYCLES)
    config = MqttConfig(f"mqtt://127.0.0.1:{PORT}", prefix="bench", discovery=False)
    sink = MqttSink(config, spool, PERIOD)
    started = time.perf_counter()
    batches = fill(sink)
    print(f"spooled {batches} cycles in {time.perf_counter() - started:.1f} s")
    counted: collections.Counter[str] = collections.Counter()  # messages a subscriber got, by prefix

    def on_message(client: object, userdata: object, message: mqtt.MQTTMessage) -> None:
        counted[message.topic[:5]] += 1

    # The subscriber, in this process, takes both the anchor's messages and the replay's: the same load on each.
    listener = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    listener.on_message = on_message
    listener.on_connect = lambda client, *_: client.subscribe("+/+/+/state", qos=0)
    listener.connect("127.0.0.1", PORT)
    listener.loop_start()
    time.sleep(0.5)
    rows = sqlite3.connect(tmp / "spool.sqlite").execute("SELECT body FROM queue_mqtt ORDER BY created, id")
    raw, raw_cpu = raw_publish([(topic, payload) for (body,) in rows for topic, payload in unbatch(body)])
    started, cpu = time.perf_counter(), time.process_time()
    sink.start()
    while spool.pending() and time.perf_counter() - started < 600:
        time.sleep(0.05)
    drained, cpu = time.perf_counter() - started, time.process_time() - cpu
    time.sleep(2)
    sink.close(5)
    listener.loop_stop()
    messages = batches * messages_per_cycle()
    print(
        f"replay of {HOURS:g} h (16 modules, {messages} messages): {drained:.1f} s, "
        f"{messages / drained:,.0f} messages/s, CPU {cpu:.1f} s, {counted['bench']} counted by a subscriber "
        "(target: within 60 s)"
    )
    print(
        f"a bare paho client, the same messages: {raw:.1f} s, {messages / raw:,.0f} messages/s, CPU {raw_cpu:.1f} s "
        f"({counted['raw00']} counted); "
        f"the replay takes {drained / raw:.2f}x that (target <= 1.1x)"
    )
    report(
        f"MQTT replay of {HOURS:g} h ({messages:,} messages)",
        f"{drained / raw:.2f}x ({drained:.1f} s)",
        f"bare paho publish: {raw:.1f} s",
        "<= 1.1x",
        drained / raw <= 1.1,
    )


def footprint(tmp: Path) -> None:
    proc = pylon2influx("--mqtt", f"mqtt://127.0.0.1:{PORT}", "--spool", str(tmp / "daemon.sqlite"))
    peak = peak_rss_mb(proc, WATCH)
    proc.terminate()
    proc.wait()
    print(f"pylon2influx --mqtt, 16 modules at 5 s, simulator in the process: peak RSS {peak:.1f} MB (target < 50)")


def main() -> None:
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        broker = start_broker(tmp)
        try:
            replay(tmp)
            if "--replay-only" not in sys.argv:
                footprint(tmp)
        finally:
            broker.terminate()
            broker.wait()


if __name__ == "__main__":
    main()
