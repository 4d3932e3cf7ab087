"""The INFO layout of every Pylontech reply: one table per command, read by the decoder and the simulator alike."""

from __future__ import annotations

from typing import Any

from ...fields import (
    CELL_COUNT_RANGE,
    CELL_VOLTAGE_RANGE,
    TEMPERATURE_RANGE,
    deciamps,
    kelvin_tenths,
    millivolts,
    percent,
    state,
)
from ...layout import Array, Capacities, Int, Layout, Repeat, Rest, Text
from .codes import Command

# Every result type: each has a layout here (the same list as the names pylonbus.protocol exports).
from .results import (
    Acknowledgement,
    AlarmInfo,
    AnalogData,
    ChargeDischargeInfo,
    ChargeDischargeSetting,
    ChargeStatus,
    FirmwareInfo,
    ManufacturerInfo,
    PackAlarm,
    PackAnalog,
    SerialNumber,
    Status1,
    Status2,
    Status3,
    SystemAlarmInfo,
    SystemAnalog,
    SystemAnalogData,
    SystemParameters,
)

_PACK_ANALOG = (
    Array("cell_voltages", millivolts("cell", CELL_VOLTAGE_RANGE), counts=CELL_COUNT_RANGE),
    Array("temperatures", kelvin_tenths("temperature", TEMPERATURE_RANGE)),
    deciamps("current"),
    millivolts("voltage"),
    Capacities(),
)
_PACK_ALARM = (
    Array("cell_states", state("cell"), counts=CELL_COUNT_RANGE),
    Array("temperature_states", state("temperature")),
    state("charge_current_state"),
    state("module_voltage_state"),
    state("discharge_current_state"),
    Int("status1", convert=Status1),
    Int("status2", convert=Status2),
    Int("status3", convert=Status3),
    Int("status4"),
    Int("status5"),
)
_CHARGE_LIMITS = (
    Int("command_value"),
    millivolts("charge_voltage_limit"),
    millivolts("discharge_voltage_limit"),
    deciamps("charge_current_limit"),
    deciamps("discharge_current_limit"),
)


def _extremes(part: str, unit: Any) -> tuple[Int, ...]:
    """average, max + module, min + module of one kind of temperature in the 0x61 reply."""
    return (
        unit(f"average_{part}"),
        unit(f"max_{part}"),
        Int(f"max_{part}_module", 2),
        unit(f"min_{part}"),
        Int(f"min_{part}_module", 2),
    )


ANALOG = Layout(AnalogData, Int("info_flag"), Int("command_value"), *_PACK_ANALOG)
SYSTEM_ANALOG_DATA = Layout(SystemAnalogData, Int("info_flag"), Repeat("modules", Layout(PackAnalog, *_PACK_ANALOG)))
# US2000C/US3000C append one byte to the spec's 0x44 reply; the fan-out blocks have none.
ALARM = Layout(AlarmInfo, Int("data_flag"), Int("command_value"), *_PACK_ALARM, Rest("extra", at_most=1))
SYSTEM_ALARM = Layout(SystemAlarmInfo, Int("data_flag"), Repeat("modules", Layout(PackAlarm, *_PACK_ALARM)))
SYSTEM_PARAMETERS = Layout(
    SystemParameters,
    Int("info_flag"),
    millivolts("cell_high_voltage_limit"),
    millivolts("cell_low_voltage_limit"),
    millivolts("cell_under_voltage_limit"),
    kelvin_tenths("charge_high_temperature_limit"),
    kelvin_tenths("charge_low_temperature_limit"),
    deciamps("charge_current_limit"),
    millivolts("module_high_voltage_limit"),
    millivolts("module_low_voltage_limit"),
    millivolts("module_under_voltage_limit"),
    kelvin_tenths("discharge_high_temperature_limit"),
    kelvin_tenths("discharge_low_temperature_limit"),
    deciamps("discharge_current_limit"),
)
MANUFACTURER = Layout(
    ManufacturerInfo,
    Text("model", 10),
    Array("software_version", Int("part"), count=2),
    Text("manufacturer", 20, pad=b"-"),
)
CHARGE_DISCHARGE = Layout(ChargeDischargeInfo, *_CHARGE_LIMITS, Int("status", convert=ChargeStatus))
CHARGE_DISCHARGE_SETTING = Layout(ChargeDischargeSetting, *_CHARGE_LIMITS)
SERIAL_NUMBER = Layout(SerialNumber, Int("command_value"), Text("serial", 16))
FIRMWARE = Layout(
    FirmwareInfo,
    Int("command_value"),
    Array("manufacture_version", Int("part"), count=2),
    Array("mainline_version", Int("part"), count=3),
)
SYSTEM_ANALOG = Layout(
    SystemAnalog,
    millivolts("voltage"),
    deciamps("current"),
    percent("soc"),
    Int("average_cycles", 2),
    Int("max_cycles", 2),
    percent("average_soh"),
    percent("min_soh"),
    millivolts("max_cell_voltage"),
    Int("max_cell_voltage_module", 2),
    millivolts("min_cell_voltage"),
    Int("min_cell_voltage_module", 2),
    *_extremes("cell_temperature", kelvin_tenths),
    *_extremes("mosfet_temperature", kelvin_tenths),
    *_extremes("bms_temperature", kelvin_tenths),
)
# What a module sends back to 0x94/0x95 is not specified: it is kept whole for the caller to see.
ACKNOWLEDGEMENT = Layout(Acknowledgement, Rest("info", at_most=None))

#: Reply layout of each command addressed to one module.
REPLY_LAYOUTS: dict[Command, Layout[Any]] = {
    Command.ANALOG: ANALOG,
    Command.ALARM: ALARM,
    Command.SYSTEM_PARAMETERS: SYSTEM_PARAMETERS,
    Command.MANUFACTURER: MANUFACTURER,
    Command.CHARGE_DISCHARGE: CHARGE_DISCHARGE,
    Command.SERIAL_NUMBER: SERIAL_NUMBER,
    Command.FIRMWARE: FIRMWARE,
    Command.SYSTEM_ANALOG: SYSTEM_ANALOG,
    Command.SET_CHARGE_DISCHARGE: ACKNOWLEDGEMENT,
    Command.TURN_OFF: ACKNOWLEDGEMENT,
}
#: Reply layout of the commands the master answers for its whole group (request INFO 0xFF).
FANOUT_LAYOUTS: dict[Command, Layout[Any]] = {
    Command.ANALOG: SYSTEM_ANALOG_DATA,
    Command.ALARM: SYSTEM_ALARM,
}


def units_of(cls: type) -> dict[str, str]:
    """The unit of each field and derived property of a result class: fields from the layout that decodes
    it, properties from the class's own `UNITS`."""
    layouts = [*REPLY_LAYOUTS.values(), *FANOUT_LAYOUTS.values()]
    layouts += [e.layout for layout in layouts for e in layout.elements if isinstance(e, Repeat)]
    units: dict[str, str] = {}
    for layout in layouts:
        if layout.cls is cls:
            units.update(layout.units())
    for klass in reversed(cls.__mro__):
        units.update(vars(klass).get("UNITS", {}))
    return units
