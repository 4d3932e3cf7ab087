"""What an EG4 LifePower4 pack answers, from the model, encoded with the family's layouts."""

from __future__ import annotations

from datetime import datetime, timedelta

from ...protocol.families.eg4 import (
    FAMILY,
    Alarm,
    Analog,
    BalanceEvent,
    CapacityAlarm,
    Command,
    CurrentEvent,
    Fet,
    System,
    SystemTime,
    TemperatureEvent,
    VoltageEvent,
)
from ...protocol.families.pylontech.results import Status1
from ..model import Module, Preset
from ..responder import Responder

# Six sensors, as every EG4 frame has: four on the cells, environment, MOSFET.
PRESETS = {
    p.name: p
    for p in (
        Preset("LIFEPOWER4", "LifePower4", 16, 6, 100.0, 15, (1, 0), 0, 100.0, 100.0),
        Preset("LIFEPOWER4-15S", "LifePower4", 15, 6, 100.0, 15, (1, 0), 0, 100.0, 100.0),
    )
}
# The event a raised (or reached) Pylontech status-1 alarm of the model is on an EG4 pack.
_EVENTS: dict[Status1, VoltageEvent | CurrentEvent | TemperatureEvent] = {
    Status1.MODULE_OVER_VOLTAGE: VoltageEvent.PACK_OVER_VOLTAGE_PROTECTION,
    Status1.CELL_UNDER_VOLTAGE: VoltageEvent.CELL_UNDER_VOLTAGE_PROTECTION,
    Status1.CHARGE_OVER_CURRENT: CurrentEvent.CHARGE_OVER_CURRENT_PROTECTION,
    Status1.DISCHARGE_OVER_CURRENT: CurrentEvent.DISCHARGE_OVER_CURRENT_PROTECTION,
    Status1.DISCHARGE_OVER_TEMPERATURE: TemperatureEvent.DISCHARGE_HIGH_TEMPERATURE_PROTECTION,
    Status1.CHARGE_OVER_TEMPERATURE: TemperatureEvent.CHARGE_HIGH_TEMPERATURE_PROTECTION,
    Status1.MODULE_UNDER_VOLTAGE: VoltageEvent.PACK_UNDER_VOLTAGE_PROTECTION,
}
_NOMINAL_VOLTS = 3.2  # per cell, for the simulated lifetime energies
_CLOCK_START = datetime(2024, 1, 1)


def analog(module: Module) -> Analog:
    values = module.centi()
    cells = values.cell_voltages
    cell_temperatures = values.temperatures[:-2]
    discharged = round(module.cycles * values.total_capacity + module.discharged, 2)
    charged = round(discharged + values.remaining_capacity, 2)
    volts = _NOMINAL_VOLTS * len(cells)
    return Analog(
        data_flag=0x10,
        pack_group=1,
        cell_voltages=cells,
        temperatures=values.temperatures,
        current=values.current,
        voltage=values.voltage,
        remaining_capacity=values.remaining_capacity,
        total_capacity=values.total_capacity,
        cycles=values.cycles,
        custom_number=0x0F,
        soc=round(100 * module.soc),
        soh=100,
        max_cell_voltage=max(cells),
        min_cell_voltage=min(cells),
        cell_voltage_difference=round(max(cells) - min(cells), 3),
        max_cell_temperature=max(cell_temperatures),
        min_cell_temperature=min(cell_temperatures),
        charged_capacity=charged,
        discharged_capacity=discharged,
        charged_energy=round(charged * volts),
        discharged_energy=round(discharged * volts),
        charging_time=round(charged / values.total_capacity * 2),
        discharging_time=round(discharged / values.total_capacity * 2),
        charges=module.cycles + 1,
        discharges=module.cycles,
    )


def alarm(module: Module) -> Alarm:
    states = module.pack_alarm()
    raised = [event for flag, event in _EVENTS.items() if flag in states.status1]
    system = System.CHARGING if module.current > 0 else System.DISCHARGING if module.current < 0 else System.STANDBY
    return Alarm(
        data_flag=0x10,
        pack_group=1,
        cell_states=states.cell_states,
        temperature_states=states.temperature_states,
        current_state=states.charge_current_state or states.discharge_current_state,
        voltage_state=states.module_voltage_state,
        custom_number=9,
        balance_event=BalanceEvent(0),
        voltage_event=VoltageEvent(sum(e for e in raised if isinstance(e, VoltageEvent))),
        temperature_event=TemperatureEvent(sum(e for e in raised if isinstance(e, TemperatureEvent))),
        current_event=CurrentEvent(sum(e for e in raised if isinstance(e, CurrentEvent))),
        capacity_alarm=CapacityAlarm.SOC_LOW if module.soc < 0.1 else CapacityAlarm(0),
        fet=Fet.CHARGE_MOSFET | Fet.DISCHARGE_MOSFET,
        system=system,
        balancing_bits=0,
        reserved=0,
    )


class Eg4Responder(Responder):
    family = FAMILY
    presets = PRESETS
    default_model = "LIFEPOWER4"

    def _info(self, command: Command, module: Module, request_info: bytes, fanout: bool) -> bytes | None:
        result: object
        if command == Command.ANALOG:
            result = analog(module)
        elif command == Command.ALARM:
            result = alarm(module)
        elif command == Command.SYSTEM_TIME:
            now = _CLOCK_START + timedelta(seconds=int(self.stack.elapsed))
            result = SystemTime(now.year, now.month, now.day, now.hour, now.minute, now.second)
        else:
            return None
        return self.family.replies[command].encode(result)


RESPONDER = Eg4Responder
