"""The modules of one group on a link: the scan, and one typed read per command."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from ..errors import NoReplyError, ProtocolError, ResponseError
from ..protocol import (
    AlarmInfo,
    AnalogData,
    ChargeDischargeInfo,
    ChargeDischargeSetting,
    Command,
    FirmwareInfo,
    ManufacturerInfo,
    ProtocolVersion,
    SerialNumber,
    SystemAlarmInfo,
    SystemAnalog,
    SystemAnalogData,
    SystemParameters,
    address,
)
from ..protocol.families.pylontech.codes import MAX_MODULE
from ..protocol.families.pylontech.layouts import CHARGE_DISCHARGE_SETTING
from .link import Link
from .ports import DEFAULT_BAUD, DEFAULT_PORT

R = TypeVar("R")


@dataclass(frozen=True)
class ScanProgress:
    module: int
    found: bool


class Stack:
    """The modules of one group on a link, with one method per read command."""

    def __init__(self, link: Link, group: int = 0) -> None:
        address(group, 1)  # validates the group
        self.link = link
        self.group = group
        self.modules: list[int] = []

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
        for module in range(1, MAX_MODULE + 1):
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
            self.link.query(Command.PROTOCOL_VERSION, self.group, module, latency=latency, tries=tries, reopen=False)
        except ResponseError:
            return True  # it answered, even if with an error code
        except (NoReplyError, ProtocolError):
            return False
        return True

    def _one(self, command: Command, module: int, cls: type[R], **query: Any) -> R:
        result = self.link.query(command, self.group, module, **query)
        if not isinstance(result, cls):  # the layout tables and this class disagree: a bug, said plainly
            raise TypeError(f"{command.name} decoded to {type(result).__name__}, expected {cls.__name__}")
        return result

    # One typed method per read command, each a line through _one: what a library user calls and mypy checks.
    def protocol_version(self, module: int = 1) -> ProtocolVersion:
        return self._one(Command.PROTOCOL_VERSION, module, ProtocolVersion)

    def analog(self, module: int = 1) -> AnalogData:
        return self._one(Command.ANALOG, module, AnalogData)

    def alarm(self, module: int = 1) -> AlarmInfo:
        return self._one(Command.ALARM, module, AlarmInfo)

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

    def analog_all(self) -> SystemAnalogData:
        """0x42 fan-out: every pack of the group in one reply from the master (not all firmwares have it)."""
        count = len(self.modules) or MAX_MODULE
        return self._one(Command.ANALOG, 1, SystemAnalogData, fanout=True, modules=count)

    def alarm_all(self) -> SystemAlarmInfo:
        count = len(self.modules) or MAX_MODULE
        return self._one(Command.ALARM, 1, SystemAlarmInfo, fanout=True, modules=count)

    def set_charge_discharge(self, module: int, setting: ChargeDischargeSetting, *, allow_write: bool = False) -> None:
        """0x94: impose limits (the module reverts unless repeated within 10 s). Changes the battery."""
        info = CHARGE_DISCHARGE_SETTING.encode(setting)
        self.link.query(Command.SET_CHARGE_DISCHARGE, self.group, module, info=info, allow_write=allow_write)

    def turn_off(self, module: int, *, allow_write: bool = False) -> None:
        """0x95: switch a module off. Changes the battery."""
        self.link.query(Command.TURN_OFF, self.group, module, allow_write=allow_write)


@contextmanager
def connect(
    port: str = DEFAULT_PORT, group: int = 0, baud: int = DEFAULT_BAUD, *, scan: bool = True, **link: Any
) -> Iterator[Stack]:
    """`with connect("/dev/ttyUSB0") as stack:` — opens the port, scans the group, closes on exit."""
    with Link(port, baud, **link) as opened:
        stack = Stack(opened, group)
        if scan:
            stack.scan()
        yield stack


def read_analog(port: str = DEFAULT_PORT, group: int = 0, baud: int = DEFAULT_BAUD) -> dict[int, AnalogData]:
    """One-shot: the analog values of every module of a group, by module number."""
    with connect(port, group, baud) as stack:
        return {module: stack.analog(module) for module in stack.modules}
