"""The fields every family's layouts are made of: the wire scales these BMSs share (mV, 0.1 K, 0.1 A, %), the
state byte of an alarm reply, and what a real pack can report at all.

They are shared rather than a family's because they are the same on every BMS of this wire (issue 21's
sources: Seplos, PACE, EG4 and Daren send cells in mV and states as 0/1/2/0xF0); a family whose scale differs
(10 mA current, 0.1 °C temperatures) builds its `Int` itself."""

from __future__ import annotations

from enum import IntEnum, IntFlag

from .layout import Int

#: What a real pack can report; outside these a reply is refused (ImplausibleValue), never passed on.
CELL_VOLTAGE_RANGE = (0.5, 5.0)
TEMPERATURE_RANGE = (-40.0, 100.0)
CELL_COUNT_RANGE = (1, 32)


class AlarmState(IntEnum):
    """State of one measured value in an alarm reply."""

    NORMAL = 0x00
    BELOW_LOWER_LIMIT = 0x01
    ABOVE_UPPER_LIMIT = 0x02
    OTHER_ERROR = 0xF0

    @classmethod
    def _missing_(cls, value: object) -> AlarmState | None:
        # A state the spec does not list is kept as a value of its own rather than failing the whole reply.
        if not isinstance(value, int):
            return None
        member = int.__new__(cls, value)
        member._name_ = f"UNKNOWN_0x{value:02X}"
        member._value_ = value
        return member


def flag_names(flags: IntFlag) -> list[str]:
    """Names of the set flags, and `BIT_n` for set bits the spec does not name."""
    names = [member.name for member in type(flags) if member in flags and member.name]
    known = 0
    for member in type(flags):
        known |= member.value
    names += [f"BIT_{bit}" for bit in range(max(8, int(flags).bit_length())) if int(flags) & ~known & (1 << bit)]
    return names


def millivolts(name: str, plausible: tuple[float, float] | None = None) -> Int:
    return Int(name, 2, div=1000, unit="V", plausible=plausible)


def kelvin_tenths(name: str, plausible: tuple[float, float] | None = None, zero: int = 2731) -> Int:
    """0.1 K on the wire; °C = (raw - zero) / 10 (PACE and EG4 take 0 °C as 2730)."""
    return Int(name, 2, signed=True, div=10, offset=zero, unit="°C", plausible=plausible)


def celsius_tenths(name: str, plausible: tuple[float, float] | None = TEMPERATURE_RANGE) -> Int:
    """Signed 0.1 °C on the wire (Daren)."""
    return Int(name, 2, signed=True, div=10, unit="°C", plausible=plausible)


def centiamps(name: str) -> Int:
    """Signed 10 mA on the wire, charge positive (the clones of Seplos, PACE, EG4 and Daren)."""
    return Int(name, 2, signed=True, div=100, unit="A")


def centivolts(name: str) -> Int:
    return Int(name, 2, div=100, unit="V")


def centiamp_hours(name: str) -> Int:
    """10 mAh on the wire."""
    return Int(name, 2, div=100, unit="Ah")


def per_mille(name: str) -> Int:
    """0.1 % in two bytes (Seplos' SOC and SOH)."""
    return Int(name, 2, div=10, unit="%", plausible=(0, 100))


def deciamps(name: str) -> Int:
    """Signed 0.1 A (100 mA) on the wire, charge positive."""
    return Int(name, 2, signed=True, div=10, unit="A")


def percent(name: str) -> Int:
    return Int(name, 1, unit="%")


# Every byte's state made once: a reply converts by indexing (an enum call cost 2 µs, 30 of them an alarm reply).
_STATES = tuple(AlarmState(value) for value in range(256))


def state(name: str) -> Int:
    return Int(name, 1, convert=_STATES.__getitem__)
