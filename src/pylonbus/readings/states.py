"""The state words of a console `pwr` row (`Volt.St`, `B.T.St`, `Base.St` …) as an alarm result, so that every
sink shows them as it shows a family's 0x44 alarms (`documents.family_alarms`): `Normal` is no alarm, `Low` and
`High` the limits, any other word a fault of its part. A column the firmware does not print is left out."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntFlag
from typing import TYPE_CHECKING, ClassVar

from ..protocol.fields import AlarmState
from ..protocol.pack import PackAlarm

if TYPE_CHECKING:  # the console's results are loaded only where a console is read
    from ..console.results import ModuleSummary

_WORDS = {"normal": AlarmState.NORMAL, "low": AlarmState.BELOW_LOWER_LIMIT, "high": AlarmState.ABOVE_UPPER_LIMIT}


class BaseFaults(IntFlag):
    """What `Base.St` says beside charge, discharge, idle and balance (CONSOLE.md)."""

    SYSTEM_ERROR = 0x01  # `SysError`
    BASE_ALARM = 0x02  # `Alarm!`


_BASE = {"SysError": BaseFaults.SYSTEM_ERROR, "Alarm!": BaseFaults.BASE_ALARM}


class SystemAlarm(IntFlag):
    """`SysAlarm.St` (header C) other than `Normal`."""

    SYSTEM_ALARM = 0x01


@dataclass(slots=True)
class ConsoleStates(PackAlarm):
    """The states of one `pwr` row; None where the firmware's table has no such column."""

    SENSOR_STATES: ClassVar[bool] = False
    ALARM_FIELDS: ClassVar[tuple[str, ...]] = (
        "voltage_state",
        "current_state",
        "temperature_state",
        "battery_voltage_state",
        "battery_temperature_state",
        "mosfet_temperature_state",
        "base_faults",
        "system_alarm",
    )

    voltage_state: AlarmState | None = None
    current_state: AlarmState | None = None
    temperature_state: AlarmState | None = None
    battery_voltage_state: AlarmState | None = None
    battery_temperature_state: AlarmState | None = None
    mosfet_temperature_state: AlarmState | None = None
    base_faults: BaseFaults | None = None
    system_alarm: SystemAlarm | None = None
    cell_states: tuple[AlarmState, ...] = ()  # `pwr` has none a cell
    temperature_states: tuple[AlarmState, ...] = ()


def _state(word: str | None) -> AlarmState | None:
    return None if word is None else _WORDS.get(word.lower(), AlarmState.OTHER_ERROR)


def console_states(row: ModuleSummary) -> ConsoleStates:
    base = row.base_state
    system = row.system_alarm_state
    return ConsoleStates(
        voltage_state=_state(row.voltage_state),
        current_state=_state(row.current_state),
        temperature_state=_state(row.temperature_state),
        battery_voltage_state=_state(row.battery_voltage_state),
        battery_temperature_state=_state(row.battery_temperature_state),
        mosfet_temperature_state=_state(row.mosfet_temperature_state),
        base_faults=None if base is None else _BASE.get(base, BaseFaults(0)),
        system_alarm=None if system is None else SystemAlarm(system != "Normal"),
    )
