"""Reads every known module of every group once a cycle: 0x42 analog and 0x44 alarm, and who it is (0x51, 0x93,
0x96) when it is first seen or comes back. A failing module never stops the others; addresses without a module
are probed again every `rescan` seconds (once each, spread over two cycles), so a module that missed the
start-up scan joins as soon as it answers.
A lost port (a gateway that closed the connection, an adapter unplugged) is a fault of the line: the modules
stay known, it is reopened with a back-off, and its loss and return are logged once each."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from math import ceil
from typing import TYPE_CHECKING, TypeVar

from ..errors import (
    ChecksumError,
    DecodeError,
    ImplausibleValue,
    LengthChecksumError,
    LinkError,
    NoReplyError,
    PortError,
    ProtocolError,
    ResponseError,
)
from ..link.link import Link
from ..link.stack import Stack
from ..protocol.family import ALARM
from ..protocol.pack import PackAlarm, PackAnalog
from ..readings.energy import EnergyMeter
from ..readings.reading import Identity, ModuleReading, Reading, StackReading, named

if TYPE_CHECKING:
    from .console import ConsoleSource  # loaded by the program only when a console is read

log = logging.getLogger("pylon2influx")
T = TypeVar("T")
# A rescan's probes are spread over this many cycles: 24 empty addresses of two groups probed at once held a cycle
# back by a second.
RESCAN_CYCLES = 2
#: Why a read failed, as counted for metrics; the first class that matches names the reason.
REASONS = (
    (NoReplyError, "timeout"),
    (LinkError, "port"),
    ((ChecksumError, LengthChecksumError), "checksum"),
    (ResponseError, "rtn"),
    (ImplausibleValue, "implausible"),
    ((DecodeError, ProtocolError), "decode"),
)


def _fingerprint(pack: PackAnalog) -> tuple[int, float, int]:
    """What tells the packs of a group apart and does not change between two reads a moment apart."""
    return pack.cycles, pack.total_capacity, len(pack.cell_voltages)


def group_of(stack: Stack) -> tuple[str, int]:
    """What tells a stack apart in a daemon of several ports: its family and group."""
    return stack.family.name, stack.group


def reason_of(error: Exception) -> str:
    return next(reason for kinds, reason in REASONS if isinstance(error, kinds))


class Poller:
    """The polling loop of one or more groups (`stacks`, all on one link or several): `scan` once, then
    `cycle` for each reading. A module that fails is offline in that reading, never an exception; silent
    addresses are probed again every `rescan` seconds; `fanout` reads a group with one request to its master
    where that is proven right; `energy` integrates the counters of each module and group."""

    def __init__(
        self,
        stacks: list[Stack],
        rescan: float,
        stop: threading.Event | None = None,
        energy: EnergyMeter | None = None,
        fanout: bool = True,
        console: ConsoleSource | None = None,
    ) -> None:
        self.stacks = stacks  # one a group, all on one link
        self.links: list[Link] = list({id(stack.link): stack.link for stack in stacks}.values())
        self.lost_ports: set[str] = set()  # ports whose loss was logged, until they answer again
        self.energy = energy
        self.fanout = fanout  # read a group with one request to its master where that is proven right
        self.proven: dict[tuple[str, int], list[int]] = {}  # group -> the modules whose fan-out order was checked
        self.no_fanout: set[tuple[str, int]] = set()  # groups whose master does not answer for them, or not in order
        self.rescan_every = rescan
        self.stop = stop or threading.Event()
        self.next_rescan = time.monotonic() + rescan
        self.to_probe: list[tuple[Stack, int]] = []  # the addresses the current rescan has still to probe
        self.probes_a_cycle = 0
        self.failures = {reason: 0 for _, reason in REASONS}  # failed module reads since start, by reason
        self.silent: set[tuple[str, int, int]] = set()  # known (family, group, module) whose last read failed
        self.identities: dict[tuple[str, int, int], Identity] = {}
        self.console = console  # the console port: merged into each cycle's RS485 readings, or read alone

    def scan(self) -> None:
        """The start-up scan of every group (ends early when `stop` is set). A stack numbers its modules from 1,
        so an address missing below the highest found is most likely a module whose probes were all lost on a
        noisy line: it is probed once more, which costs nothing where no address is missing."""
        for stack in self.stacks:
            stack.scan(stop=self.stop)
            if stack.modules:
                self.probe_missing(stack, range(1, stack.modules[-1]))

    @property
    def errors(self) -> int:
        """Failed module reads since the poller started, all reasons together."""
        return sum(self.failures.values())

    def describe(self) -> str:
        groups = [named(stack.family.name, f"group {stack.group}: {stack.modules}") for stack in self.stacks]
        if self.console is not None and self.console.alone:
            groups.append(self.console.describe())
        return "; ".join(groups)

    def cycle(self) -> Reading:
        """Every known module once; a re-scan first when one is due."""
        if self.to_probe or time.monotonic() >= self.next_rescan:
            self.rescan(RESCAN_CYCLES)
        started = time.time_ns()
        clock = time.monotonic()
        stacks = [StackReading(stack.group, self.read_group(stack), bms=stack.family.name) for stack in self.stacks]
        if self.console is not None and self.console.alone:
            stacks.append(self.console.read())
            if self.console.error is not None:  # the only port: its failure is the cycle's poll error
                self.failures[reason_of(self.console.error)] += 1
        elif self.console is not None:
            self.console.merge(stacks)
        reading = Reading(started, stacks, time.monotonic() - clock, dict(self.failures), monotonic=clock)
        self.watch_links()
        if self.energy is not None:
            self.count_energy(self.energy, reading)
        return reading

    def watch_links(self) -> None:
        """Log once when a port is lost and once when it answers again, however many attempts that takes."""
        for link in self.links:
            if link.lost is not None and link.port not in self.lost_ports:
                self.lost_ports.add(link.port)
                log.warning("connection lost: %s — reconnecting; every known module is kept", link.lost)
            elif link.lost is None and link.port in self.lost_ports:
                self.lost_ports.discard(link.port)
                log.warning("%s answers again; polling resumed", link.port)

    def reconnect(self) -> bool:
        """Reopen the lost ports whose back-off allows; True when one opened (poll now to see it works)."""
        return any([link.reconnect() for link in self.links])  # a list: every due port gets its attempt

    def retry_in(self) -> float | None:
        """Seconds until the next reopen of a lost port; None when no port waits for one."""
        return min((wait for link in self.links if (wait := link.retry_in) is not None), default=None)

    @staticmethod
    def count_energy(meter: EnergyMeter, reading: Reading) -> None:
        now = reading.monotonic  # a step of the wall clock neither stops nor inflates the integration
        for stack in reading.stacks:
            for module in stack.modules:
                module.energy = meter.add(module.name, now, module.current, module.power)
            stack.energy = meter.add(named(stack.bms, f"stack {stack.group}"), now, stack.current, stack.power)
        meter.stage()

    def read_group(self, stack: Stack) -> list[ModuleReading]:
        """Every known module of a group: with one 0x42 and one 0x44 to the master (fan-out, INFO FF) where
        that was proven to give each module's values, else with two requests to each module."""
        if (
            self.fanout
            and stack.fanout
            and group_of(stack) not in self.no_fanout
            and stack.modules == list(range(1, len(stack.modules) + 1))
        ):
            readings = self.read_fanout(stack)
            if readings is not None:
                return readings
        return self.read_each(stack)

    def read_fanout(self, stack: Stack) -> list[ModuleReading] | None:
        """The group from its master's fan-out replies; None when they cannot be used this cycle. The packs of
        a fan-out reply carry no address: that pack n is module n is proven for a set of modules, by each
        pack's cycles, capacity and cell count matching what that module itself answers, and only where those
        tell every module apart; proven again when a module joins, leaves, or comes back as another pack."""
        group = stack.group
        try:
            packs: tuple[PackAnalog, ...] = stack.analog_all().modules
        except (NoReplyError, ResponseError) as error:  # the master does not answer for its group
            log.info("group %d: the master does not answer for the whole group (%s); reading each module", group, error)
            self.no_fanout.add(group_of(stack))
            return None
        except (LinkError, ProtocolError) as error:
            self.failures[reason_of(error)] += 1
            log.debug("group %d: fan-out read failed (%s); reading each module this cycle", group, error)
            return None
        if len(packs) != len(stack.modules):  # a module is silent (the master leaves it out), or was missed
            self.proven.pop(group_of(stack), None)  # whatever comes back is proven again
            if len(packs) > len(stack.modules):  # the master counts more packs than the scan found
                self.probe_missing(stack, range(1, len(packs) + 1))
            return None
        if self.proven.get(group_of(stack)) != stack.modules:
            return self.prove_fanout(stack, packs)
        alarms = self.alarms(lambda: stack.alarm_all().modules, f"group {group}: no fan-out alarm data")
        if alarms is not None and len(alarms) != len(packs):
            alarms = None
        return [
            self.answered(stack, module, pack, None if alarms is None else alarms[module - 1])
            for module, pack in zip(stack.modules, packs, strict=True)
        ]

    def prove_fanout(self, stack: Stack, packs: tuple[PackAnalog, ...]) -> list[ModuleReading]:
        """Read each module once and compare with the fan-out packs; this cycle's readings are the modules' own."""
        readings = self.read_each(stack)
        own = [_fingerprint(r.analog) if r.analog is not None else None for r in readings]
        if None in own:
            return readings  # a module did not answer: prove it another cycle
        if len(set(own)) < len(own):
            log.info(
                "group %d: modules look alike (cycles, capacity, cells), so fan-out packs cannot be told apart; "
                "reading each module",
                stack.group,
            )
            self.no_fanout.add(group_of(stack))
        elif own == [_fingerprint(pack) for pack in packs]:
            self.proven[group_of(stack)] = list(stack.modules)
            log.info(
                "group %d: read with one request a group from now on (fan-out, checked against each module)",
                stack.group,
            )
        else:
            log.warning("group %d: the fan-out packs are not in module order; reading each module", stack.group)
            self.no_fanout.add(group_of(stack))
        return readings

    def read_each(self, stack: Stack) -> list[ModuleReading]:
        """Each module of a group with its own requests. A module that answered until now and fails is read
        once more after the others: one read lost on a noisy line (all its tries) does not make it silent for
        a cycle, while a module already silent, or a lost port, costs no second read."""
        results: dict[int, ModuleReading | LinkError | ProtocolError] = {}
        for module in stack.modules:
            if self.stop.is_set():  # SIGTERM ends a cycle between two modules: silent ones can take seconds each
                break
            # Once the port is lost the other modules are not tried: reopening is paced by its back-off.
            lost = next((result for result in results.values() if isinstance(result, PortError)), None)
            results[module] = self.read(stack, module) if lost is None else lost
        for module, result in results.items():
            if self.stop.is_set():
                break
            if (
                isinstance(result, Exception)
                and (*group_of(stack), module) not in self.silent
                and stack.link.lost is None
            ):
                log.debug("module %d of group %d: %s; reading it again after the others", module, stack.group, result)
                results[module] = self.read(stack, module)
                if not isinstance(results[module], Exception):  # a failure counts once a module and cycle
                    self.failures[reason_of(result)] += 1
        return [
            self.silent_reading(stack, module, result) if isinstance(result, Exception) else result
            for module, result in results.items()
        ]

    def read(self, stack: Stack, module: int) -> ModuleReading | LinkError | ProtocolError:
        """A module's reading, or why its analog values could not be read."""
        try:
            analog = stack.analog(module)
        except (LinkError, ProtocolError) as error:
            return error
        alarm = None
        if ALARM in stack.family.roles:  # every family but Boqiang's has one
            alarm = self.alarms(lambda: stack.alarm(module), f"module {module} of group {stack.group}: no alarm data")
        return self.answered(stack, module, analog, alarm)

    def alarms(self, read: Callable[[], T], what: str) -> T | None:
        """An alarm read, which the analog values stand without: a failure is counted and logged, and None."""
        try:
            return read()
        except (LinkError, ProtocolError) as error:
            self.failures[reason_of(error)] += 1
            log.debug("%s: %s", what, error)
            return None

    def silent_reading(self, stack: Stack, module: int, error: Exception) -> ModuleReading:
        key = (*group_of(stack), module)
        self.failures[reason_of(error)] += 1
        if isinstance(error, PortError):  # the line's fault, not the module's: said once for the port
            log.debug("module %d of group %d not read: %s", module, stack.group, error)
        elif key in self.silent:  # said once when it went silent
            log.debug("module %d of group %d still silent: %s", module, stack.group, error)
        else:
            log.warning("module %d gives no data and is skipped until it does: %s", module, error)
            self.silent.add(key)
        identity = self.identities.get(key, Identity())
        return ModuleReading(stack.group, module, None, identity=identity, error=str(error), bms=stack.family.name)

    def answered(self, stack: Stack, module: int, analog: PackAnalog, alarm: PackAlarm | None) -> ModuleReading:
        """A module's reading; who it is is read when it is first seen and when it comes back. One that comes
        back as another pack (swapped while the stack was off) ends its group's fan-out proof."""
        key = (*group_of(stack), module)
        if key in self.silent or key not in self.identities:
            if key in self.silent:
                log.warning("module %d of group %d gives data again", module, stack.group)
                self.silent.discard(key)
            identity = self.identify(stack, module)
            if self.identities.setdefault(key, identity) != identity:
                self.proven.pop(group_of(stack), None)
                self.identities[key] = identity
        return ModuleReading(stack.group, module, analog, alarm, self.identities[key], bms=stack.family.name)

    def identify(self, stack: Stack, module: int) -> Identity:
        """Model, manufacturer, serial and firmware; what a module does not answer stays None."""

        def incomplete(role: str, error: Exception) -> None:
            log.info("module %d of group %d: identity incomplete: %s", module, stack.group, error)

        try:
            return stack.identity(module, missing=incomplete)
        except (LinkError, ProtocolError) as error:
            incomplete("", error)
            return Identity()

    def rescan(self, cycles: int = 1) -> None:
        """Probe each address without a known module once; one that answers joins the poll. Called once a cycle,
        a rescan is spread over `cycles` calls. An address below one that answers most likely holds a module
        whose probe was lost on a noisy line: it gets the tries of a read at once. A group given up on for
        fan-out (one reply lost on a noisy line) is tried again; a fan-out proof stays while the modules are the
        same (see `answered`). While a port is lost the rescan waits: it runs at the first cycle after the port
        answers again."""
        if any(link.lost is not None for link in self.links):
            return
        if not self.to_probe:
            self.next_rescan = time.monotonic() + self.rescan_every
            self.no_fanout.clear()
            self.to_probe = [
                (stack, module)
                for stack in self.stacks
                for module in range(1, stack.family.max_module + 1)
                if module not in stack.modules
            ]
            self.probes_a_cycle = ceil(len(self.to_probe) / cycles)
        now, self.to_probe = self.to_probe[: self.probes_a_cycle], self.to_probe[self.probes_a_cycle :]
        try:
            for stack, module in now:
                if self.stop.is_set():
                    break
                if module not in stack.modules and stack.probe(module, tries=1):
                    self.join(stack, module)
                    self.probe_missing(stack, range(1, module))
        except PortError:
            self.to_probe = []
            self.next_rescan = 0.0  # lost while probing: the cycle says so, and the rescan is due again

    def probe_missing(self, stack: Stack, addresses: range) -> None:
        """Probe the addresses without a known module; one that answers joins the poll."""
        for module in addresses:
            if module in stack.modules or self.stop.is_set():
                continue
            if stack.probe(module):
                self.join(stack, module)

    @staticmethod
    def join(stack: Stack, module: int) -> None:
        stack.modules = sorted([*stack.modules, module])
        log.warning("module %d of group %d answers now and is polled from now on", module, stack.group)
