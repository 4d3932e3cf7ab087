"""The modules of one group on a link, all of one BMS family: the scan, and one typed read per command.

What the poller and the programs read of any family (analog values, alarms, identity) goes through the family's
`roles`, so nothing here names another family's command; the Pylontech-only commands keep their methods."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, TypeVar

from ..errors import LinkError, NoReplyError, ProtocolError, ResponseError
from ..protocol import (
    ChargeDischargeInfo,
    ChargeDischargeSetting,
    Command,
    FirmwareInfo,
    ManufacturerInfo,
    ProtocolVersion,
    SerialNumber,
    SystemAnalog,
    SystemParameters,
    families,
    pack,
)
from ..protocol.families.pylontech.layouts import CHARGE_DISCHARGE_SETTING
from ..protocol.family import ALARM, ANALOG, IDENTITY_ROLES, VERSION, Family
from ..readings.reading import Identity
from .link import Link
from .ports import DEFAULT_BAUD, DEFAULT_PORT

R = TypeVar("R")


@dataclass(frozen=True)
class ScanProgress:
    """What `Stack.scan` reports after each address it probes."""

    module: int
    """The module number just probed, 1-14."""
    found: bool
    """Whether it answered."""


class Stack:
    """The modules of one group (0-15) on a `Link`, with one typed method per read command. `bms` is the family's
    name (or the Family): the link's own family (Pylontech unless said otherwise) by default. Every read retries
    like the C program and raises `NoReplyError` when the module stays silent, `ResponseError` when it answers
    with an error code, `ImplausibleValue` or another `ProtocolError` when its reply proves nothing. Thread-safe
    as its link is (a `Stack` holds no state but `modules`, which `scan` replaces)."""

    def __init__(self, link: Link, group: int = 0, bms: str | Family[Any, Any] | None = None) -> None:
        self.family: Family[Any, Any] = families.family(bms) if isinstance(bms, str) else bms or link.family
        """The BMS family whose commands and layouts the reads use (`protocol.families`)."""
        self.family.address(group, 1)  # validates the group
        self.link = link
        """The `Link` the stack's requests go through (other stacks and threads may share it)."""
        self.group = group
        """The group number, 0-15 (the DIP switches 2-4 of the master)."""
        self.modules: list[int] = []
        """The module numbers the last scan found, gaps kept (`[1, 4]`); empty before a scan."""
        roles = self.family.roles
        self._probe = roles.get(VERSION, roles[ANALOG])  # the shortest reply a module of the family gives

    def scan(
        self,
        progress: Callable[[ScanProgress], None] | None = None,
        probe_latency: float = 0.04,
        stop: threading.Event | None = None,
    ) -> list[int]:
        """Find the modules 1–14 that answer, gaps included. Every address gets the tries of a read, so a
        reply lost on a noisy line does not hide a module; a silent address costs only its timeouts.
        `stop` ends the scan early (a signal during start-up)."""
        found: list[int] = []
        for module in range(1, self.family.max_module + 1):
            if stop is not None and stop.is_set():
                break
            present = self.probe(module, probe_latency)
            if present:
                found.append(module)
            if progress:
                progress(ScanProgress(module, present))
        self.modules = found
        return self.modules

    def probe(self, module: int, latency: float = 0.04, tries: int | None = None) -> bool:
        """True if `module` answers 0x4F (with any return code) within `tries` (by default the link's)."""
        try:
            self.link.query(
                self._probe, self.group, module, latency=latency, tries=tries, reopen=False, family=self.family
            )
        except ResponseError:
            return True  # it answered, even if with an error code
        except (NoReplyError, ProtocolError):
            return False
        return True

    def _one(self, command: IntEnum, module: int, cls: type[R], **query: Any) -> R:
        result = self.link.query(command, self.group, module, family=self.family, **query)
        if not isinstance(result, cls):  # the layout tables and this class disagree: a bug, said plainly
            raise TypeError(f"{command.name} decoded to {type(result).__name__}, expected {cls.__name__}")
        return result

    @property
    def fanout(self) -> bool:
        """Whether the family's master may answer the analog and alarm reads for its whole group (INFO 0xFF)."""
        return all(self.family.roles.get(role) in self.family.fanouts for role in (ANALOG, ALARM))

    def command(self, role: str) -> IntEnum:
        """The family's command for `role` (`protocol.family.ANALOG`, `IDENTITY`, `PARAMETERS` …); ValueError
        when the family has none."""
        command: IntEnum | None = self.family.roles.get(role)
        if command is None:
            raise ValueError(f"{self.family.title} batteries have no {role} command")
        return command

    def read(self, role: str, module: int = 1) -> Any:
        """The family's result for `role`, of the family's own type."""
        return self.link.query(self.command(role), self.group, module, family=self.family)

    def identity(
        self,
        module: int = 1,
        roles: tuple[str, ...] = IDENTITY_ROLES,
        missing: Callable[[str, Exception], None] | None = None,
    ) -> Identity:
        """Who `module` says it is: model and manufacturer, serial and firmware, from each identity command of
        `roles` its family has (Pylontech: 0x51, 0x93, 0x96). Raises the error of the first when the module does
        not answer it; a later read that fails (0x96 is missing from some firmwares) leaves its fields None, and
        is handed to `missing(role, error)` if given."""
        identity = Identity()
        for n, role in enumerate([role for role in roles if role in self.family.roles]):
            try:
                piece = self.read(role, module).identity
            except (LinkError, ProtocolError) as error:
                if n == 0:
                    raise
                if missing is not None:
                    missing(role, error)
                continue
            for key, value in piece.items():
                setattr(identity, key, value)
        return identity

    def identify(self) -> dict[int, Identity]:
        """The identity of each module of the group, by module number; scans first if no scan has run. A module
        found that then gives no identity is left out."""
        found: dict[int, Identity] = {}
        for module in self.modules or self.scan():
            with suppress(LinkError, ProtocolError):
                found[module] = self.identity(module)
        return found

    # One typed method per read command, each a line through _one: what a library user calls and mypy checks.
    def protocol_version(self, module: int = 1) -> ProtocolVersion:
        """0x4F: the protocol version `module` speaks (a `ResponseError` from a module that answers, but not this)."""
        return self._one(Command.PROTOCOL_VERSION, module, ProtocolVersion)

    # Analog values and alarms of every family (Pylontech's AnalogData and AlarmInfo are such packs).
    def analog(self, module: int = 1) -> pack.PackAnalog:
        """0x42 (or the family's analog read): cell voltages and module voltage in V, current in A (charge
        positive), temperatures in °C, capacities in Ah, cycles; `soc` in %, `power` in W."""
        return self._one(self.command(ANALOG), module, pack.PackAnalog)

    def alarm(self, module: int = 1) -> pack.PackAlarm:
        """0x44 (or the family's alarm read): the alarm state of each cell, temperature and current, and the
        protection flags; `alarms` lists what is abnormal, worded for a person (empty when all is well)."""
        return self._one(self.command(ALARM), module, pack.PackAlarm)

    def system_parameters(self, module: int = 1) -> SystemParameters:
        """0x47: the limits the module protects itself with, in V, °C and A."""
        return self._one(Command.SYSTEM_PARAMETERS, module, SystemParameters)

    def manufacturer(self, module: int = 1) -> ManufacturerInfo:
        """0x51: model name, software version and manufacturer."""
        return self._one(Command.MANUFACTURER, module, ManufacturerInfo)

    def charge_discharge(self, module: int = 1) -> ChargeDischargeInfo:
        """0x92: the charge and discharge limits the module asks the inverter for, in V and A, and its requests."""
        return self._one(Command.CHARGE_DISCHARGE, module, ChargeDischargeInfo)

    def serial_number(self, module: int = 1) -> SerialNumber:
        """0x93: the module's serial number."""
        return self._one(Command.SERIAL_NUMBER, module, SerialNumber)

    def firmware(self, module: int = 1) -> FirmwareInfo:
        """0x96: the manufacture and main-line firmware versions (not all firmwares answer it)."""
        return self._one(Command.FIRMWARE, module, FirmwareInfo)

    def system_analog(self) -> SystemAnalog:
        """0x61, protocol V3.5 masters only: totals for the whole system."""
        return self._one(Command.SYSTEM_ANALOG, 1, SystemAnalog)

    def analog_all(self) -> Any:
        """0x42 fan-out: every pack of the group in one reply from the master (not all firmwares have it); its
        `modules` are the packs (Pylontech's SystemAnalogData)."""
        return self._fanout(ANALOG, pack.PackAnalog)

    def alarm_all(self) -> Any:
        """0x44 fan-out: the alarm states of every pack of the group in one reply from the master."""
        return self._fanout(ALARM, pack.PackAlarm)

    def _fanout(self, role: str, cls: type) -> Any:
        count = len(self.modules) or self.family.max_module
        result = self.link.query(self.command(role), self.group, 1, fanout=True, modules=count, family=self.family)
        packs = getattr(result, "modules", None)
        if not isinstance(packs, tuple) or not all(isinstance(p, cls) for p in packs):
            raise TypeError(f"the {role} fan-out decoded to {type(result).__name__}, not packs of {cls.__name__}")
        return result

    def set_charge_discharge(self, module: int, setting: ChargeDischargeSetting, *, allow_write: bool = False) -> None:
        """0x94: impose limits (the module reverts unless repeated within 10 s). Changes the battery."""
        info = CHARGE_DISCHARGE_SETTING.encode(setting)
        self.link.query(Command.SET_CHARGE_DISCHARGE, self.group, module, info=info, allow_write=allow_write)

    def turn_off(self, module: int, *, allow_write: bool = False) -> None:
        """0x95: switch a module off. Changes the battery."""
        self.link.query(Command.TURN_OFF, self.group, module, allow_write=allow_write)


@contextmanager
def connect(
    port: str = DEFAULT_PORT,
    group: int = 0,
    baud: int = DEFAULT_BAUD,
    *,
    scan: bool = True,
    bms: str | None = None,
    **link: Any,
) -> Iterator[Stack]:
    """`with connect("/dev/ttyUSB0") as stack:` — opens the port, scans the group, closes on exit. `bms` names
    the family (default Pylontech)."""
    with Link(port, baud, **link) as opened:
        stack = Stack(opened, group, bms)
        if scan:
            stack.scan()
        yield stack


def read_analog(port: str = DEFAULT_PORT, group: int = 0, baud: int = DEFAULT_BAUD) -> dict[int, pack.PackAnalog]:
    """One-shot: the analog values of every module of a group, by module number."""
    with connect(port, group, baud) as stack:
        return {module: stack.analog(module) for module in stack.modules}
