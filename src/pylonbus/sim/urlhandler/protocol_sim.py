"""`sim://?stack=US3000C*3&seed=1&frozen=1&no_reply=0.1`: a simulated stack behind the pyserial API.

Parameters: `bms` (the family played, `pylontech` unless said: `sim://?bms=seplos`); `stack` (see `Stack.parse`,
with that family's models) or `modules`, `model` (default: the family's first) and `group`; `seed`, `frozen`, `speed`;
`pace=0` to deliver replies at once instead of at the port's baud rate; `echo=1` for a line that sends every
request back before any reply (with `stack=-`: an adapter that only echoes); `alarm=2:cell_voltage_high,…`
(alarms a module reports, see `Stack.raise_alarm`); `serial=1:TEXT` (repeatable; percent-encoded, any latin-1
byte: the serial a module sends, see `Stack.set_serial`); the fault rates of `Faults`."""

from __future__ import annotations

import time
import urllib.parse
from typing import Any

import serial
from serial.serialutil import SerialBase

from ...protocol.families import DEFAULT
from ..bus import Bus
from ..model import Stack, group_spec
from ..responder import Faults
from ..responders import responder_class

PARAMETERS = (
    "bms",
    "stack",
    "modules",
    "model",
    "group",
    "seed",
    "frozen",
    "speed",
    "pace",
    "echo",
    "alarm",
    "serial",
    *Faults.names(),
)


def stack_from_query(query: dict[str, list[str]]) -> tuple[Stack, Faults, bool, bool]:
    """The stack (of the family `bms` names), its faults, and whether the line paces replies and echoes requests."""
    unknown = sorted(set(query) - set(PARAMETERS))
    if unknown:
        raise ValueError(f"unknown parameter {unknown[0]!r}; known: {', '.join(PARAMETERS)}")

    def one(name: str, default: str) -> str:
        return query.get(name, [default])[-1]

    def flag(name: str) -> bool:
        return one(name, "0") in ("1", "true", "yes")

    played = responder_class(one("bms", DEFAULT))
    spec = one("stack", "")
    if spec and {"modules", "model", "group"} & set(query):
        raise ValueError("give either stack=… or modules/model/group, not both (stack names every group)")
    if not spec:
        model = one("model", played.default_model)
        spec = group_spec(model, int(one("modules", "3")), int(one("group", "0")), played.family)
    stack = played.parse_stack(
        spec,
        seed=int(one("seed", "0")),
        frozen=flag("frozen"),
        speed=float(one("speed", "1")),
        start=time.monotonic(),
    )
    for alarm in ",".join(query.get("alarm", [])).split(","):
        if alarm:
            stack.raise_alarm(alarm)
    for spec in query.get("serial", []):
        stack.set_serial(spec)
    faults = Faults(**{name: float(one(name, "0")) for name in Faults.names()})
    return stack, faults, one("pace", "1") not in ("0", "false", "no"), flag("echo")


class Serial(SerialBase):
    """An in-process simulated port: writes are requests, reads return the replies as they arrive."""

    def open(self) -> None:
        if self.port is None:
            raise serial.SerialException("Port must be configured before it can be used.")
        if self.is_open:
            raise serial.SerialException("Port is already open.")
        if getattr(self, "simulator", None) is None:  # reopening keeps the battery and its state
            self.from_url(self.port)
        self.is_open = True
        self._incoming = bytearray()
        self._schedule: list[tuple[float, bytes]] = []  # replies not yet fully on the wire

    def from_url(self, url: str) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme != "sim":
            raise serial.SerialException(f"expected a URL like sim://?stack=US3000C*3, got {url!r}")
        try:
            stack, faults, pace, echo = stack_from_query(urllib.parse.parse_qs(parts.query))
        except (ValueError, KeyError, TypeError) as error:
            raise serial.SerialException(f"invalid simulator URL {url!r}: {error}") from None
        self.simulator = responder_class(stack.family.name)(stack, faults, seed=stack.seed)
        self._bus = Bus(self.simulator, self.baudrate, pace, echo)

    def _reconfigure_port(self) -> None:
        if getattr(self, "_bus", None) is not None:
            self._bus.baud = self.baudrate

    def close(self) -> None:
        self.is_open = False

    def _arrived(self, now: float) -> None:
        """Move the bytes that have reached the receiver by `now` into the input buffer."""
        byte_time = self._bus.byte_time
        keep = []
        for start, reply in self._schedule:
            count = len(reply) if byte_time == 0 else min(len(reply), int((now - start) / byte_time))
            if count > 0:
                self._incoming += reply[:count]
                reply = reply[count:]
                start += count * byte_time
            if reply:
                keep.append((start, reply))
        self._schedule = keep

    def _next_arrival(self) -> float | None:
        return min((start + self._bus.byte_time for start, _ in self._schedule), default=None)

    @property
    def in_waiting(self) -> int:
        self._arrived(time.monotonic())
        return len(self._incoming)

    def read(self, size: int = 1) -> bytes:
        if not self.is_open:
            raise serial.PortNotOpenError()
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        while True:
            now = time.monotonic()
            self._arrived(now)
            if len(self._incoming) >= size:
                break
            arrival = self._next_arrival()
            if arrival is None:
                # Nothing more will come: wait out the timeout as a silent bus would.
                if deadline is not None and deadline > now:
                    time.sleep(deadline - now)
                break
            if deadline is not None and now >= deadline:
                break
            # Sleep until the rest of the wanted bytes could be in, never past the deadline.
            wanted = arrival + (size - len(self._incoming) - 1) * self._bus.byte_time
            wake = wanted if deadline is None else min(wanted, deadline)
            if wake > now:
                time.sleep(wake - now)
        data = bytes(self._incoming[:size])
        del self._incoming[:size]
        return data

    def write(self, data: Any) -> int:
        if not self.is_open:
            raise serial.PortNotOpenError()
        data = bytes(data)
        self._schedule += self._bus.receive(data, time.monotonic())
        return len(data)

    def reset_input_buffer(self) -> None:
        self._incoming.clear()
        self._schedule.clear()

    def reset_output_buffer(self) -> None:
        pass

    def flush(self) -> None:
        pass

    # The modem lines pyserial's interface has: a simulated bus has none, so each is a fixed answer.
    @property
    def cts(self) -> bool:
        return True

    @property
    def dsr(self) -> bool:
        return True

    @property
    def ri(self) -> bool:
        return False

    @property
    def cd(self) -> bool:
        return True

    def _update_break_state(self) -> None:
        pass

    def _update_rts_state(self) -> None:
        pass

    def _update_dtr_state(self) -> None:
        pass
