"""What a Seplos pack answers, from the model, encoded with the family's layouts."""

from __future__ import annotations

from ...protocol.families.seplos import ALARM, ANALOG, FAMILY, Alarm, Analog, Command
from ..model import Module, Preset
from ..responder import Responder

PRESETS = {
    p.name: p
    for p in (
        Preset("SEPLOS-16S280", "1101-ZH26", 16, 6, 280.0, 10, (1, 6), 0, 140.0, 150.0),
        Preset("SEPLOS-15S100", "1101-ZH26", 15, 6, 100.0, 10, (1, 6), 0, 50.0, 100.0),
    )
}
_SWITCHES_ON = 0x03  # both switches on (syssi)
_CHARGING = 0x02


def analog(module: Module) -> Analog:
    pack = module.centi()
    return Analog(
        data_flag=0,
        command_group=1,
        cell_voltages=pack.cell_voltages,
        temperatures=pack.temperatures,
        current=pack.current,
        voltage=pack.voltage,
        remaining_capacity=pack.remaining_capacity,
        custom_number=10,
        total_capacity=pack.total_capacity,
        soc=round(100 * module.soc, 1),
        rated_capacity=pack.total_capacity,
        cycles=pack.cycles,
        soh=100.0,
        port_voltage=pack.voltage,
        reserved=(0, 0, 0, 0),
    )


def alarm(module: Module) -> Alarm:
    states = module.pack_alarm()
    events = [0] * 20
    events[6] = _SWITCHES_ON
    events[9] = _CHARGING if module.current > 0 else 0
    return Alarm(
        data_flag=0,
        command_group=1,
        cell_states=states.cell_states,
        temperature_states=states.temperature_states,
        charge_current_state=states.charge_current_state,
        voltage_state=states.module_voltage_state,
        events=tuple(events),
    )


class SeplosResponder(Responder):
    family = FAMILY
    presets = PRESETS
    default_model = "SEPLOS-16S280"

    def _info(self, command: Command, module: Module, request_info: bytes, fanout: bool) -> bytes | None:
        if command == Command.ANALOG:
            return ANALOG.encode(analog(module))
        if command == Command.ALARM:
            return ALARM.encode(alarm(module))
        return None  # 0x47: its layout is not known, so it is not made up


RESPONDER = SeplosResponder
