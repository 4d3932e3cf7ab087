"""What a Pylontech stack answers to each command, from the model, encoded with the family's own layouts."""

from __future__ import annotations

from collections.abc import Callable

from ...protocol.families.pylontech.codes import Command
from ...protocol.families.pylontech.family import FAMILY
from ...protocol.families.pylontech.layouts import CHARGE_DISCHARGE_SETTING
from ...protocol.families.pylontech.results import ChargeDischargeInfo, SystemAlarmInfo, SystemAnalogData
from ..model import PRESETS, Module, field_values
from ..responder import Responder


class PylontechResponder(Responder):
    """Answers like the Pylontech modules of the stack."""

    family = FAMILY
    presets = PRESETS
    default_model = "US3000C"

    def _info(self, command: Command, module: Module, request_info: bytes, fanout: bool) -> bytes | None:
        if fanout:
            group = [m for m in self.stack.group_modules(module.group) if not m.off]  # a module turned off is gone
            result: object
            if command == Command.ANALOG:
                result = SystemAnalogData(0x11, tuple(m.pack() for m in group))
            else:
                result = SystemAlarmInfo(0, tuple(m.pack_alarm() for m in group))
            return self.family.fanouts[command].encode(result)
        if command == Command.SET_CHARGE_DISCHARGE:
            setting = CHARGE_DISCHARGE_SETTING.decode(request_info)
            module.limits = ChargeDischargeInfo(**field_values(setting), status=module.charge_discharge().status)
            return b""
        if command == Command.TURN_OFF:
            module.off = True
            return b""
        readers: dict[Command, Callable[[], object]] = {
            Command.ANALOG: module.analog,
            Command.ALARM: module.alarm,
            Command.SYSTEM_PARAMETERS: module.parameters,
            Command.MANUFACTURER: module.manufacturer,
            Command.CHARGE_DISCHARGE: module.charge_discharge,
            Command.SERIAL_NUMBER: module.serial_number,
            Command.FIRMWARE: module.firmware,
        }
        source = readers.get(command)
        return None if source is None else self.family.replies[command].encode(source())


RESPONDER = PylontechResponder
