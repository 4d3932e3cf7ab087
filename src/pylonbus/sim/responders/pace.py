"""What a PACE pack (or a bus of them behind a master) answers, from the model, with the family's layouts."""

from __future__ import annotations

from ...protocol.families.pace import (
    FAMILY,
    AlarmInfo,
    AnalogData,
    Command,
    Configuration,
    Fault,
    HardwareVersion,
    HistoryRecord,
    PackAlarm,
    PackAnalog,
    Protection1,
    Protection2,
    SerialNumber,
    System,
    SystemAlarmInfo,
    SystemAnalogData,
    Warning1,
    Warning2,
)
from ...protocol.families.pylontech.results import Status1
from ..model import Module, Preset, field_values
from ..responder import Responder

# The user-defined count decides the tail after the design capacity, as on the packs in the vectors: 3 (none,
# Jakiper), 2 (the SOC byte) and 9 (Gobel's 14 bytes).
PRESETS = {
    p.name: p
    for p in (
        Preset("JK48V100", "P16S100A", 16, 6, 100.0, 3, (1, 0), 0, 50.0, 100.0),
        Preset("GOBEL-280", "P16S280A", 16, 6, 280.0, 9, (1, 0), 1, 140.0, 200.0),
        Preset("P15S100", "P15S100A", 15, 6, 100.0, 2, (1, 0), 0, 50.0, 100.0),
    )
}


# The protection a raised (or reached) Pylontech status-1 alarm of the model is on a PACE pack.
_PROTECTIONS: dict[Status1, Protection1 | Protection2] = {
    Status1.MODULE_OVER_VOLTAGE: Protection1.PACK_OVER_VOLTAGE,
    Status1.CELL_UNDER_VOLTAGE: Protection1.CELL_UNDER_VOLTAGE,
    Status1.CHARGE_OVER_CURRENT: Protection1.CHARGE_OVER_CURRENT,
    Status1.DISCHARGE_OVER_CURRENT: Protection1.DISCHARGE_OVER_CURRENT,
    Status1.DISCHARGE_OVER_TEMPERATURE: Protection2.DISCHARGE_OVER_TEMPERATURE,
    Status1.CHARGE_OVER_TEMPERATURE: Protection2.CHARGE_OVER_TEMPERATURE,
    Status1.MODULE_UNDER_VOLTAGE: Protection1.PACK_UNDER_VOLTAGE,
}


def _tail(module: Module) -> bytes:
    percent = round(100 * module.soc)
    udi = module.preset.user_defined_items
    if udi == 2:
        return bytes([percent])
    if udi == 9:  # Gobel's shape: SOC, four capacity words, SOH, a mV voltage, a zero word
        design = round(module.preset.capacity * 100).to_bytes(2, "big")
        volts = round(1000 * sum(module.cell_voltages())).to_bytes(2, "big")
        return bytes([percent]) + design * 4 + bytes([100]) + volts + bytes(2)
    return b""


def pack(module: Module) -> PackAnalog:
    values = module.centi()
    return PackAnalog(
        cell_voltages=values.cell_voltages,
        temperatures=values.temperatures,
        current=values.current,
        voltage=round(sum(values.cell_voltages), 3),  # PACE sends the pack voltage in mV
        remaining_capacity=values.remaining_capacity,
        user_defined_items=module.preset.user_defined_items,
        total_capacity=values.total_capacity,
        cycles=values.cycles,
        design_capacity=values.total_capacity,
        extra=_tail(module),
    )


def pack_alarm(module: Module) -> PackAlarm:
    states = module.pack_alarm()
    protection1, protection2 = Protection1(0), Protection2.FULLY_CHARGED if module.soc >= 1.0 else Protection2(0)
    for flag, protection in _PROTECTIONS.items():
        if flag in states.status1:
            if isinstance(protection, Protection1):
                protection1 |= protection
            else:
                protection2 |= protection
    system = System.CHARGE_MOSFET | System.DISCHARGE_MOSFET
    if module.current > 0:
        system |= System.CHARGING
    elif module.current < 0:
        system |= System.DISCHARGING
    return PackAlarm(
        cell_states=states.cell_states,
        temperature_states=states.temperature_states,
        charge_current_state=states.charge_current_state,
        voltage_state=states.module_voltage_state,
        discharge_current_state=states.discharge_current_state,
        protection1=protection1,
        protection2=protection2,
        system=system,
        configuration=Configuration.BUZZER_ALARM | Configuration.LED_ALARM,
        fault=Fault(0),
        balancing_bits=0,
        warning1=Warning1(0),
        warning2=Warning2(0),
    )


class PaceResponder(Responder):
    family = FAMILY
    presets = PRESETS
    default_model = "JK48V100"

    def _info(self, command: Command, module: Module, request_info: bytes, fanout: bool) -> bytes | None:
        if fanout:
            group = [m for m in self.stack.group_modules(module.group) if not m.off]
            result: object
            if command == Command.ANALOG:
                result = SystemAnalogData(0, tuple(pack(m) for m in group))
            else:
                result = SystemAlarmInfo(0, tuple(pack_alarm(m) for m in group))
            return self.family.fanouts[command].encode(result)
        if command == Command.ANALOG:
            result = AnalogData(**field_values(pack(module)))
        elif command == Command.ALARM:
            extra = bytes(module.preset.alarm_extra_bytes)
            result = AlarmInfo(**field_values(pack_alarm(module)), extra=extra)
        elif command == Command.HARDWARE_VERSION:
            result = HardwareVersion(f"{module.preset.device_name}-2401-1.00")
        elif command == Command.SERIAL_NUMBER:
            result = SerialNumber(module.serial)
        elif command == Command.HISTORY:
            values = pack(module)
            result = HistoryRecord(
                timestamp=(24, 1, 1, 0, 0, 0),
                cell_voltages=values.cell_voltages,
                temperatures=values.temperatures,
                current=values.current,
                voltage=values.voltage,
                remaining_capacity=values.remaining_capacity,
                total_capacity=values.total_capacity,
                extra=bytes(12),
            )
        else:
            return None
        return self.family.replies[command].encode(result)


RESPONDER = PaceResponder
