"""The modules of one group on a link, all of one BMS family: the scan, and one typed read per command.

What the poller and the programs read of any family (analog values, alarms, identity) goes through the family's
`roles`, so nothing here names another family's command; the Pylontech-only commands keep their methods."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, TypeVar

from ..errors import NoReplyError, ProtocolError, ResponseError
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
from .link import Link
from .ports import DEFAULT_BAUD, DEFAULT_PORT

R = TypeVar("R")


@dataclass(frozen=True)
class ScanProgress:
    module: int
    found: bool


class Stack:
    """The modules of one group on a link, with one method per read command. `bms` is the family's name (or
    the Family): the link's own family (Pylontech unless said otherwise) by default."""

    def __init__(self, link: Link, group: int = 0, bms: str | Family[Any, Any] | None = None) -> None:
        self.family: Family[Any, Any] = families.family(bms) if isinstance(bms, str) else bms or link.family
        self.family.address(group, 1)  # validates the group
        self.link = link
        self.group = group
        self.modules: list[int] = []
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

    def probe(self, module: int, latency: float = 0.04) -> bool:
        """True if `module` answers 0x4F (with any return code) within the link's tries."""
        try:
            self.link.query(self._probe, self.group, module, latency=latency, reopen=False, family=self.family)
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

    def identity(self, module: int = 1) -> Iterator[dict[str, str]]:
        """Who a module says it is, a piece ("model", "manufacturer", "serial", "firmware") per identity command
        its family has, in order: a read that fails raises after the pieces read before it."""
        for role in IDENTITY_ROLES:
            if role in self.family.roles:
                yield self.read(role, module).identity

    # One typed method per read command, each a line through _one: what a library user calls and mypy checks.
    def protocol_version(self, module: int = 1) -> ProtocolVersion:
        return self._one(Command.PROTOCOL_VERSION, module, ProtocolVersion)

    # Analog values and alarms of every family (Pylontech's AnalogData and AlarmInfo are such packs).
    def analog(self, module: int = 1) -> pack.PackAnalog:
        return self._one(self.command(ANALOG), module, pack.PackAnalog)

    def alarm(self, module: int = 1) -> pack.PackAlarm:
        return self._one(self.command(ALARM), module, pack.PackAlarm)

    def system_parameters(self, module: int = 1) -> SystemParameters:
        return self._one(Command.SYSTEM_PARAMETERS, module, SystemParameters)

    def manufacturer(self, module: int = 1) -> ManufacturerInfo:
        return self._one(Command.MANUFACTURER, module, ManufacturerInfo)

    def charge_discharge(self, module: int = 1) -> ChargeDischargeInfo:
        return self._one(Command.CHARGE_DISCHARGE, module, ChargeDischargeInfo)

    def serial_number(self, module: int = 1) -> SerialNumber:
        return self._one(Command.SERIAL_NUMBER, module, SerialNumber)

    def firmware(self, module: int = 1) -> FirmwareInfo:
        return self._one(Command.FIRMWARE, module, FirmwareInfo)

    def system_analog(self) -> SystemAnalog:
        """0x61, protocol V3.5 masters only: totals for the whole system."""
        return self._one(Command.SYSTEM_ANALOG, 1, SystemAnalog)

    def analog_all(self) -> Any:
        """0x42 fan-out: every pack of the group in one reply from the master (not all firmwares have it); its
        `modules` are the packs (Pylontech's SystemAnalogData)."""
        return self._fanout(ANALOG, pack.PackAnalog)

    def alarm_all(self) -> Any:
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
