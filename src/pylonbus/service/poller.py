"""Reads every known module of every group once a cycle: 0x42 analog and 0x44 alarm, and who it is (0x51, 0x93,
0x96) when it is first seen or comes back. A failing module never stops the others; addresses without a module
are probed again every `rescan` seconds, so a module that missed the start-up scan joins as soon as it answers."""

from __future__ import annotations

import logging
import threading
import time

from ..client import Stack
from ..errors import (
    ChecksumError,
    DecodeError,
    ImplausibleValue,
    LengthChecksumError,
    LinkError,
    NoReplyError,
    ProtocolError,
    ResponseError,
)
from ..protocol.codes import MAX_MODULE
from ..protocol.results import AlarmInfo
from .energy import EnergyMeter
from .reading import Identity, ModuleReading, Reading, StackReading

log = logging.getLogger("pylon2influx")
#: Why a read failed, as counted for metrics; the first class that matches names the reason.
REASONS = (
    (NoReplyError, "timeout"),
    (LinkError, "port"),
    ((ChecksumError, LengthChecksumError), "checksum"),
    (ResponseError, "rtn"),
    (ImplausibleValue, "implausible"),
    ((DecodeError, ProtocolError), "decode"),
)


def reason_of(error: Exception) -> str:
    return next(reason for kinds, reason in REASONS if isinstance(error, kinds))


class Poller:
    def __init__(
        self,
        stacks: list[Stack],
        rescan: float,
        stop: threading.Event | None = None,
        energy: EnergyMeter | None = None,
    ) -> None:
        self.stacks = stacks  # one a group, all on one link
        self.energy = energy
        self.rescan_every = rescan
        self.stop = stop or threading.Event()
        self.next_rescan = time.monotonic() + rescan
        self.failures = {reason: 0 for _, reason in REASONS}  # failed module reads since start, by reason
        self.silent: set[tuple[int, int]] = set()  # known (group, module) whose last read failed
        self.identities: dict[tuple[int, int], Identity] = {}

    def scan(self) -> None:
        """The start-up scan of every group (ends early when `stop` is set)."""
        for stack in self.stacks:
            stack.scan(stop=self.stop)

    @property
    def errors(self) -> int:
        return sum(self.failures.values())

    def describe(self) -> str:
        return "; ".join(f"group {stack.group}: {stack.modules}" for stack in self.stacks)

    def cycle(self) -> Reading:
        """Every known module once; a re-scan first when one is due."""
        if time.monotonic() >= self.next_rescan:
            self.rescan()
        started = time.time_ns()
        clock = time.monotonic()
        stacks = [
            StackReading(stack.group, [self.read(stack, module) for module in stack.modules]) for stack in self.stacks
        ]
        reading = Reading(started, stacks, time.monotonic() - clock, dict(self.failures))
        if self.energy is not None:
            self.count_energy(self.energy, reading)
        return reading

    @staticmethod
    def count_energy(meter: EnergyMeter, reading: Reading) -> None:
        now = reading.time_ns / 1e9
        for stack in reading.stacks:
            for module in stack.modules:
                module.energy = meter.add(
                    module.name, now, None if module.analog is None else module.analog.current, module.power
                )
            stack.energy = meter.add(f"stack {stack.group}", now, stack.current, stack.power)
        meter.save(now)

    def read(self, stack: Stack, module: int) -> ModuleReading:
        key = (stack.group, module)
        try:
            analog = stack.analog(module)
        except (LinkError, ProtocolError) as error:
            self.failures[reason_of(error)] += 1
            if key in self.silent:  # said once when it went silent
                log.debug("module %d of group %d still silent: %s", module, stack.group, error)
            else:
                log.warning("module %d gives no data and is skipped until it does: %s", module, error)
                self.silent.add(key)
            return ModuleReading(
                stack.group, module, None, identity=self.identities.get(key, Identity()), error=str(error)
            )
        try:
            alarm: AlarmInfo | None = stack.alarm(module)
        except (LinkError, ProtocolError) as error:  # the analog values stand without it
            self.failures[reason_of(error)] += 1
            log.debug("module %d of group %d: no alarm data: %s", module, stack.group, error)
            alarm = None
        if key in self.silent or key not in self.identities:
            if key in self.silent:
                log.warning("module %d of group %d gives data again", module, stack.group)
                self.silent.discard(key)
            self.identities[key] = self.identify(stack, module)
        return ModuleReading(stack.group, module, analog, alarm, self.identities[key])

    def identify(self, stack: Stack, module: int) -> Identity:
        """Model, manufacturer, serial and firmware; what a module does not answer stays None."""
        identity = Identity()
        try:
            info = stack.manufacturer(module)
            identity.model, identity.manufacturer = info.model, info.manufacturer
            identity.serial = stack.serial_number(module).serial
            identity.firmware = stack.firmware(module).mainline_version_text
        except (LinkError, ProtocolError) as error:
            log.info("module %d of group %d: identity incomplete: %s", module, stack.group, error)
        return identity

    def rescan(self) -> None:
        """Probe the addresses without a known module; one that answers joins the poll."""
        self.next_rescan = time.monotonic() + self.rescan_every
        for stack in self.stacks:
            for module in range(1, MAX_MODULE + 1):
                if module in stack.modules or self.stop.is_set():
                    continue
                if stack.probe(module):
                    stack.modules = sorted([*stack.modules, module])
                    log.warning("module %d of group %d answers now and is polled from now on", module, stack.group)
