"""A day of MQTT backlog replayed into a real Mosquitto, and the daemon's footprint with MQTT on.

1. The MQTT sink takes 24 h of readings at 5 s from 16 modules in two groups (17,280 cycles of 18 documents,
   16 modules and 2 stacks: 311,040 messages) into its spool queue while the broker is away; then it connects
   to mosquitto (Debian package `mosquitto`, started here on 127.0.0.1:18893) and publishes the backlog with
   QoS 1. Printed: the time until the queue is empty and the messages a subscriber counted; target: the day
   within 60 s.
2. `pylon2influx --mqtt` polling 16 modules (two groups, in-process simulator) every 5 s: peak resident memory
   after a minute; target < 50 MB.

Run: python benchmarks/mqtt.py"""

from __future__ import annotations

import subprocess
import tempfile
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt

from processes import SIXTEEN_MODULES, peak_rss_mb, pylon2influx
from pylonbus.readings.reading import Identity, ModuleReading, Reading, StackReading
from pylonbus.sim import Stack
from pylonbus.sinks.mqtt.config import MqttConfig
from pylonbus.sinks.mqtt.sink import MqttSink
from pylonbus.store.spool import Spool

PORT = 18893
PERIOD = 5
CYCLES = 24 * 3600 // PERIOD
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


def replay(tmp: Path) -> None:
    spool = Spool(tmp / "spool.sqlite", CYCLES).queue("mqtt", CYCLES)
    config = MqttConfig(f"mqtt://127.0.0.1:{PORT}", prefix="bench", discovery=False)
    sink = MqttSink(config, spool, PERIOD)
    started = time.perf_counter()
    batches = fill(sink)
    print(f"spooled {batches} cycles in {time.perf_counter() - started:.1f} s")
    counted = 0
    done = threading.Event()

    def on_message(*_: object) -> None:
        nonlocal counted
        counted += 1

    listener = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    listener.on_message = on_message
    listener.on_connect = lambda client, *_: client.subscribe("bench/+/+/state", qos=0)
    listener.connect("127.0.0.1", PORT)
    listener.loop_start()
    time.sleep(0.5)
    started = time.perf_counter()
    sink.start()
    while spool.pending() and time.perf_counter() - started < 600:
        time.sleep(0.2)
    drained = time.perf_counter() - started
    time.sleep(2)
    done.set()
    sink.close(5)
    listener.loop_stop()
    messages = batches * messages_per_cycle()
    print(
        f"replay of one day (16 modules, {messages} messages): {drained:.1f} s, "
        f"{messages / drained:,.0f} messages/s, {counted} counted by a subscriber (target: within 60 s)"
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
            footprint(tmp)
        finally:
            broker.terminate()
            broker.wait()


if __name__ == "__main__":
    main()
