"""What a Boqiang pack answers, from the model, encoded with the family's layout."""

from __future__ import annotations

from ...protocol.families.boqiang import ANALOG, FAMILY, Analog, Command
from ..model import Module, Preset
from ..responder import Responder

PRESETS = {
    p.name: p
    for p in (
        Preset("BMS007-16S", "BMS007-LD43-16S", 16, 6, 50.0, 2, (1, 0), 0, 50.0, 100.0),
        Preset("BMS007-15S", "BMS007-LD43-15S", 15, 4, 50.0, 2, (1, 0), 0, 50.0, 100.0),
    )
}


class BoqiangResponder(Responder):
    family = FAMILY
    presets = PRESETS
    default_model = "BMS007-16S"

    def _info(self, command: Command, module: Module, request_info: bytes, fanout: bool) -> bytes | None:
        values = module.centi()
        return ANALOG.encode(
            Analog(
                data_flag=0,
                command_group=1,
                cell_voltages=values.cell_voltages,
                temperatures=values.temperatures,
                current=values.current,
                voltage=values.voltage,
                remaining_capacity=values.remaining_capacity,
                custom_number=2,
                total_capacity=values.total_capacity,
                cycles=values.cycles,
            )
        )


RESPONDER = BoqiangResponder
