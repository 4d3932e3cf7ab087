"""Daren DR-1363 / DR-JC03 ("TR1363", Tian Power, SacredSun, Basen protocol; VER 0x22, CID1 0x4A).

Facts: cpttinkering/daren-485 README @ d020d511 (tables with modifiers), infertux/tr1363 parser and tests
(values asserted, @ ad6b3c67), m0n5t3r/esphome-daren-bms; frames in tests/vectors/bms/frames.json. Requests name
the pack in INFO (`~22014A42E00201FD28`), 19200 baud. The 0x42 reply puts SOC and pack voltage first, three named
temperatures in signed 0.1 °C (not Kelvin), full capacity before remaining, then the status words: it is the
alarm reply as well (no 0x44 frame is known)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum, IntFlag
from typing import ClassVar

from .. import family as roles
from .. import pack
from ..family import Family, numbered
from ..fields import (
    CELL_COUNT_RANGE,
    CELL_VOLTAGE_RANGE,
    AlarmState,
    celsius_tenths,
    centiamp_hours,
    centiamps,
    centivolts,
    millivolts,
)
from ..layout import Array, Int, Layout, Rest, Text

CID1_DAREN = 0x4A
MAX_MODULE = 15
address, locate = numbered("Daren", 1, MAX_MODULE)


class Command(IntEnum):
    ANALOG = 0x42
    SYSTEM_PARAMETERS = 0x47
    PROTOCOL_VERSION = 0x4F
    MANUFACTURER = 0x51
    PROTECTION_COUNTS = 0x83
    CAPACITIES = 0xB0  # module 4 (capacity parameters) of service 0xB0; the other modules have no frames


class Machine(IntFlag):
    """Machine status (cpttinkering's table, from a decompiled PC tool: untested)."""

    INITIALISATION = 0x01
    SELF_CHECK = 0x02
    READY = 0x04
    DISCHARGING = 0x08
    CHARGING = 0x10
    FAIL = 0x20
    POWER_OFF = 0x40
    FACTORY_MODE = 0x80


class Io(IntFlag):
    """IO status (same table)."""

    CHARGER_ONLINE = 0x0001
    ACC_SIGNAL = 0x0002
    ON_SIGNAL = 0x0004
    AEROSOL_DETECTED = 0x0008
    DISCHARGE_LOCKED = 0x0010
    ANTI_THEFT_LOCKED = 0x0020
    CHARGE_LOCKED = 0x0040
    PRE_DISCHARGE_MOSFET = 0x0100
    CRYSTAL_OSCILLATOR_FAIL = 0x1000
    EEPROM_FAIL = 0x2000


def _cells(low: int, high: int) -> tuple[int, ...]:
    """Numbers (from 1) of the cells whose bits are set in a low (cells 1-16) and high (17-32) word."""
    bits = low | high << 16
    return tuple(cell + 1 for cell in range(32) if bits >> cell & 1)


@dataclass(slots=True)
class Analog(pack.PackAnalog, pack.PackAlarm):
    """0x42 of one pack, values and states. The status words' bits are in the Basen document, which no source
    quotes: they are kept as words, and `alarms` names each that is not zero. The per-cell words give each cell's
    state: above its upper limit where its over-voltage alarm or protection bit is set, below for under-voltage."""

    ALARM_FIELDS: ClassVar[tuple[str, ...]] = ("voltage_status", "current_status", "temperature_status", "alarm_status")

    data_flag: int
    soc: float = field()  # a field of its own frame, where the base derives it
    voltage: float
    cell_voltages: tuple[float, ...]
    environment_temperature: float = field(metadata=pack.quantity("°C", "temperature around the pack"))
    pack_temperature: float = field(metadata=pack.quantity("°C", "average temperature of the pack"))
    mosfet_temperature: float = field(metadata=pack.quantity("°C", "temperature of the BMS's power MOSFETs"))
    cell_temperatures: tuple[float, ...] = field()
    current: float
    internal_resistance: int  # raw: "0.1, unused" by the README, no unit given
    soh: int = field(metadata=pack.quantity("%", "state of health"))
    custom_number: int
    total_capacity: float
    remaining_capacity: float
    cycles: int
    voltage_status: int
    current_status: int
    temperature_status: int
    alarm_status: int
    fet_status: int  # its bits are not quoted by any source
    over_voltage_protection_low: int
    under_voltage_protection_low: int
    over_voltage_alarm_low: int
    under_voltage_alarm_low: int
    balancing_low: int
    balancing_high: int
    over_voltage_protection_high: int
    under_voltage_protection_high: int
    over_voltage_alarm_high: int
    under_voltage_alarm_high: int
    machine: Machine
    io: Io

    @property
    def temperatures(self) -> tuple[float, ...]:  # type: ignore[override]
        """Every sensor in wire order: environment, pack, MOSFET, then the cells'."""
        return (self.environment_temperature, self.pack_temperature, self.mosfet_temperature, *self.cell_temperatures)

    @property
    def bms_temperature(self) -> float:
        """The MOSFETs', the BMS board's own sensor."""
        return self.mosfet_temperature

    @property
    def balancing(self) -> tuple[int, ...]:
        return _cells(self.balancing_low, self.balancing_high)

    @property
    def cell_states(self) -> tuple[AlarmState, ...]:  # type: ignore[override]
        high = set(
            _cells(
                self.over_voltage_alarm_low | self.over_voltage_protection_low,
                self.over_voltage_alarm_high | self.over_voltage_protection_high,
            )
        )
        low = set(
            _cells(
                self.under_voltage_alarm_low | self.under_voltage_protection_low,
                self.under_voltage_alarm_high | self.under_voltage_protection_high,
            )
        )
        return tuple(
            AlarmState.ABOVE_UPPER_LIMIT
            if n in high
            else AlarmState.BELOW_LOWER_LIMIT
            if n in low
            else AlarmState.NORMAL
            for n in range(1, len(self.cell_voltages) + 1)
        )

    @property
    def temperature_states(self) -> tuple[AlarmState, ...]:  # type: ignore[override]
        """None known: the temperature word's bits are not quoted by any source (it is in `alarms` raw)."""
        return ()


@dataclass(slots=True)
class SystemParameters:
    """0x47 (cpttinkering's table). Its modifiers are not all credible (a pack voltage limit of 3650 "/1000"), so
    only what the rest of the protocol proves is scaled: cell voltages in mV and the design capacity in 10 mAh
    as in 0x42 (8000: the 80 Ah of the README's own 0x42 example). The other words keep their raw values."""

    data_flag: int
    cell_high_voltage_limit: float
    cell_low_voltage_limit: float
    high_temperature_limit: int
    low_temperature_limit: int
    charge_current_upper_limit: int
    pack_high_voltage_limit: int
    pack_low_voltage_limit: int
    cell_count: int
    charge_current_limit: int
    design_capacity: float
    history_interval: int
    balancing_mode: int
    product_barcode: str  # 0xFF-padded: all 0xFF, so empty, on the DR-JC03 of the README
    bms_barcode: str


@dataclass(slots=True)
class VersionNumber:
    """0x4F: one byte (0xC8 on a DR-JC03); the VER of the frame is the protocol's, 0x22."""

    number: int


@dataclass(slots=True)
class ManufacturerInfo:
    """0x51: hardware type, product and project codes, software and boot versions."""

    hardware_type: str
    product_code: str
    project_code: str
    software_version: tuple[int, ...]
    boot_version: tuple[int, ...]

    @property
    def software_version_text(self) -> str:
        return ".".join(f"{part:02d}" for part in self.software_version)

    @property
    def identity(self) -> dict[str, str]:
        return {"model": self.product_code, "firmware": self.software_version_text}


@dataclass(slots=True)
class ProtectionCounts:
    """0x83 (operation 1, read): how often each protection tripped. 12 bytes after the eight named counters
    carry no name in the README: `extra`."""

    command: int  # 0x83, echoed
    operation: int
    over_charge: int = field(metadata=pack.quantity("", "over-charge protections", pack.TOTAL_INCREASING))
    over_discharge: int = field(metadata=pack.quantity("", "over-discharge protections", pack.TOTAL_INCREASING))
    over_current: int = field(metadata=pack.quantity("", "over-current protections", pack.TOTAL_INCREASING))
    temperature: int = field(metadata=pack.quantity("", "temperature protections", pack.TOTAL_INCREASING))
    short_circuit: int = field(metadata=pack.quantity("", "short-circuit protections", pack.TOTAL_INCREASING))
    mosfet_high_temperature: int = field(
        metadata=pack.quantity("", "MOSFET over-temperature protections", pack.TOTAL_INCREASING)
    )
    environment_high_temperature: int = field(
        metadata=pack.quantity("", "environment over-temperature", pack.TOTAL_INCREASING)
    )
    environment_low_temperature: int = field(
        metadata=pack.quantity("", "environment under-temperature", pack.TOTAL_INCREASING)
    )
    extra: bytes = b""


@dataclass(slots=True)
class Capacities:
    """0xB0 module 4: capacities and lifetime totals (cpttinkering's table)."""

    command: int  # 0xB0, echoed
    command_group: int
    operation: int
    module: int
    function_id: int
    function_length: int
    remaining_capacity: float = field(metadata=pack.quantity("Ah", "remaining capacity"))
    full_capacity: float = field(metadata=pack.quantity("Ah", "full-charge capacity"))
    design_capacity: float = field(metadata=pack.quantity("Ah", "design capacity"))
    charged_capacity: float = field(
        metadata=pack.quantity("Ah", "charge put in over the pack's life", pack.TOTAL_INCREASING)
    )
    discharged_capacity: float = field(
        metadata=pack.quantity("Ah", "charge taken out over the pack's life", pack.TOTAL_INCREASING)
    )
    charged_energy: float = field(
        metadata=pack.quantity("kWh", "energy put in over the pack's life", pack.TOTAL_INCREASING)
    )
    discharged_energy: float = field(
        metadata=pack.quantity("kWh", "energy taken out over the pack's life", pack.TOTAL_INCREASING)
    )


Result = Analog | SystemParameters | VersionNumber | ManufacturerInfo | ProtectionCounts | Capacities


def _word(name: str, convert: type[IntFlag] | None = None) -> Int:
    return Int(name, 2, convert=convert)


_STATUS_WORDS = (
    "voltage_status",
    "current_status",
    "temperature_status",
    "alarm_status",
    "fet_status",
    "over_voltage_protection_low",
    "under_voltage_protection_low",
    "over_voltage_alarm_low",
    "under_voltage_alarm_low",
    "balancing_low",
    "balancing_high",
    "over_voltage_protection_high",
    "under_voltage_protection_high",
    "over_voltage_alarm_high",
    "under_voltage_alarm_high",
)
ANALOG = Layout(
    Analog,
    Int("data_flag"),
    Int("soc", 2, div=100, unit="%", plausible=(0, 100)),
    centivolts("voltage"),
    Array("cell_voltages", millivolts("cell", CELL_VOLTAGE_RANGE), counts=CELL_COUNT_RANGE),
    celsius_tenths("environment_temperature"),
    celsius_tenths("pack_temperature"),
    celsius_tenths("mosfet_temperature"),
    Array("cell_temperatures", celsius_tenths("temperature"), counts=(1, 16)),
    centiamps("current"),
    Int("internal_resistance", 2),
    Int("soh", 2, unit="%", plausible=(0, 100)),
    Int("custom_number"),
    centiamp_hours("total_capacity"),
    centiamp_hours("remaining_capacity"),
    Int("cycles", 2),
    *map(_word, _STATUS_WORDS),
    Int("machine", convert=Machine),
    _word("io", Io),
)
SYSTEM_PARAMETERS = Layout(
    SystemParameters,
    Int("data_flag"),
    millivolts("cell_high_voltage_limit"),
    millivolts("cell_low_voltage_limit"),
    *(
        Int(name, 2)
        for name in (
            "high_temperature_limit",
            "low_temperature_limit",
            "charge_current_upper_limit",
            "pack_high_voltage_limit",
            "pack_low_voltage_limit",
            "cell_count",
            "charge_current_limit",
        )
    ),
    centiamp_hours("design_capacity"),
    Int("history_interval", 2),
    Int("balancing_mode", 2),
    Text("product_barcode", 20, pad=b"\xff"),
    Text("bms_barcode", 20, pad=b"\xff"),
)
MANUFACTURER = Layout(
    ManufacturerInfo,
    Text("hardware_type", 10, pad=b" "),
    Text("product_code", 10, pad=b" "),
    Text("project_code", 10, pad=b" "),
    Array("software_version", Int("part"), count=3),
    Array("boot_version", Int("part"), count=2),
)
PROTECTION_COUNTS = Layout(
    ProtectionCounts,
    Int("command", plausible=(0x83, 0x83)),
    Int("operation"),
    *(
        Int(name, 2)
        for name in (
            "over_charge",
            "over_discharge",
            "over_current",
            "temperature",
            "short_circuit",
            "mosfet_high_temperature",
            "environment_high_temperature",
            "environment_low_temperature",
        )
    ),
    Rest("extra", at_most=12),
)
CAPACITIES = Layout(
    Capacities,
    Int("command", plausible=(0xB0, 0xB0)),
    Int("command_group"),
    Int("operation"),
    Int("module", plausible=(4, 4)),
    Int("function_id"),
    Int("function_length"),
    centiamp_hours("remaining_capacity"),
    centiamp_hours("full_capacity"),
    centiamp_hours("design_capacity"),
    Int("charged_capacity", 4, div=100, unit="Ah"),
    Int("discharged_capacity", 4, div=100, unit="Ah"),
    Int("charged_energy", 2, div=100, unit="kWh"),
    Int("discharged_energy", 2, div=100, unit="kWh"),
)

_FRAME = 18

FAMILY: Family[Command, Result] = Family(
    name="daren",
    title="Daren",
    ver=0x22,
    cid1=CID1_DAREN,
    commands=Command,
    replies={
        Command.ANALOG: ANALOG,
        Command.SYSTEM_PARAMETERS: SYSTEM_PARAMETERS,
        Command.PROTOCOL_VERSION: Layout(VersionNumber, Int("number")),
        Command.MANUFACTURER: MANUFACTURER,
        Command.PROTECTION_COUNTS: PROTECTION_COUNTS,
        Command.CAPACITIES: CAPACITIES,
    },
    fanouts={},
    addressed=frozenset({Command.ANALOG, Command.SYSTEM_PARAMETERS, Command.PROTECTION_COUNTS, Command.CAPACITIES}),
    writes=frozenset(),
    address=address,
    info_addresses=lambda adr: (adr,),
    max_module=MAX_MODULE,
    roles={
        roles.ANALOG: Command.ANALOG,
        roles.ALARM: Command.ANALOG,
        roles.VERSION: Command.PROTOCOL_VERSION,
        roles.IDENTITY: Command.MANUFACTURER,
        roles.PARAMETERS: Command.SYSTEM_PARAMETERS,
    },
    # After the address: operation 1 (read) for 0x83; operation 1, module 4, function 0xFF, length 0 for 0xB0.
    request_tails={Command.PROTECTION_COUNTS: b"\x01", Command.CAPACITIES: b"\x01\x04\xff\x00"},
    reply_bytes={
        Command.PROTOCOL_VERSION: _FRAME + 2,
        Command.ANALOG: _FRAME + 2 * (6 + 32 + 6 + 1 + 8 + 2 + 1 + 6 + 30 + 3),
        Command.SYSTEM_PARAMETERS: _FRAME + 2 * 65,
        Command.MANUFACTURER: _FRAME + 2 * 35,
        Command.PROTECTION_COUNTS: _FRAME + 2 * 30,
        Command.CAPACITIES: _FRAME + 2 * 24,
    },
    pack_bytes={},
    locate=locate,
)
