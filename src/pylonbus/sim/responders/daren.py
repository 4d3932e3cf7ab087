"""What a Daren pack answers, from the model, encoded with the family's layouts."""

from __future__ import annotations

from ...protocol.families.daren import (
    FAMILY,
    Analog,
    Capacities,
    Command,
    Io,
    Machine,
    ManufacturerInfo,
    ProtectionCounts,
    SystemParameters,
    VersionNumber,
)
from ...protocol.fields import AlarmState
from ..model import CELL_HIGH, CELL_LOW, Module, Preset
from ..responder import Responder

# Sensors: environment, pack and MOSFET, then the cells' (4 on the 16S packs in the vectors, 3 here for 15S).
PRESETS = {
    p.name: p
    for p in (
        Preset("DR48100", "HUANY04", 16, 7, 100.0, 1, (1, 0, 2), 0, 50.0, 100.0),
        Preset("DR48100-15S", "HUANY04", 15, 6, 100.0, 1, (1, 0, 2), 0, 50.0, 100.0),
    )
}
_NOMINAL_VOLTS = 3.2
_ENERGY_WRAP = 655.36  # kWh: the energies are 16-bit words of 10 Wh, so a long-lived pack's wrap round
_VERSION = 0xC8  # what a DR-JC03 answers to 0x4F


def _bits(states: tuple[AlarmState, ...], which: AlarmState) -> int:
    return sum(1 << n for n, state in enumerate(states) if state == which)


def analog(module: Module) -> Analog:
    values = module.centi()
    cells = module.pack_alarm().cell_states
    high, low = _bits(cells, AlarmState.ABOVE_UPPER_LIMIT), _bits(cells, AlarmState.BELOW_LOWER_LIMIT)
    environment, pack, mosfet, *cell_temperatures = values.temperatures
    machine = Machine.READY
    if module.current > 0:
        machine |= Machine.CHARGING
    elif module.current < 0:
        machine |= Machine.DISCHARGING
    return Analog(
        data_flag=0,
        soc=round(100 * module.soc, 2),
        voltage=values.voltage,
        cell_voltages=values.cell_voltages,
        environment_temperature=environment,
        pack_temperature=pack,
        mosfet_temperature=mosfet,
        cell_temperatures=tuple(cell_temperatures),
        current=values.current,
        internal_resistance=0,
        soh=100,
        custom_number=1,
        total_capacity=values.total_capacity,
        remaining_capacity=values.remaining_capacity,
        cycles=values.cycles,
        voltage_status=0,
        current_status=0,
        temperature_status=0,
        alarm_status=0,
        fet_status=0,
        over_voltage_protection_low=0,
        under_voltage_protection_low=0,
        over_voltage_alarm_low=high & 0xFFFF,
        under_voltage_alarm_low=low & 0xFFFF,
        balancing_low=0,
        balancing_high=0,
        over_voltage_protection_high=0,
        under_voltage_protection_high=0,
        over_voltage_alarm_high=high >> 16,
        under_voltage_alarm_high=low >> 16,
        machine=machine,
        io=Io.CHARGER_ONLINE if module.current > 0 else Io(0),
    )


def capacities(module: Module) -> Capacities:
    values = module.centi()
    discharged = round(module.cycles * values.total_capacity + module.discharged, 2)
    charged = round(discharged + values.remaining_capacity, 2)
    volts = _NOMINAL_VOLTS * module.preset.cells
    return Capacities(
        command=Command.CAPACITIES,
        command_group=module.address,
        operation=1,
        module=4,
        function_id=0xFF,
        function_length=0,
        remaining_capacity=values.remaining_capacity,
        full_capacity=values.total_capacity,
        design_capacity=values.total_capacity,
        charged_capacity=charged,
        discharged_capacity=discharged,
        charged_energy=round(charged * volts / 1000 % _ENERGY_WRAP, 2),
        discharged_energy=round(discharged * volts / 1000 % _ENERGY_WRAP, 2),
    )


class DarenResponder(Responder):
    family = FAMILY
    presets = PRESETS
    default_model = "DR48100"

    def _info(self, command: Command, module: Module, request_info: bytes, fanout: bool) -> bytes | None:
        result: object
        preset = module.preset
        if command == Command.ANALOG:
            result = analog(module)
        elif command == Command.PROTOCOL_VERSION:
            result = VersionNumber(_VERSION)
        elif command == Command.MANUFACTURER:
            project = f"{preset.cells}S{round(preset.capacity)}A"
            result = ManufacturerInfo("T1_G", preset.device_name, project, preset.software_version, (1, 1))
        elif command == Command.PROTECTION_COUNTS:
            result = ProtectionCounts(Command.PROTECTION_COUNTS, 1, 0, 0, 0, 0, 0, 0, 0, 0, bytes(12))
        elif command == Command.CAPACITIES:
            result = capacities(module)
        elif command == Command.SYSTEM_PARAMETERS:
            # The raw words as the README's DR-JC03 sends them; the proven ones from the model.
            result = SystemParameters(
                0,
                CELL_HIGH,
                CELL_LOW,
                115,
                45,
                12000,
                3650,
                2500,
                preset.cells,
                12000,
                preset.capacity,
                1440,
                0,
                "",
                module.serial[:20],
            )
        else:
            return None
        return self.family.replies[command].encode(result)


RESPONDER = DarenResponder
