"""Declarative INFO layouts: a command's reply is described once, as data, and one walker decodes it and,
in reverse, encodes it for the simulator.

Consecutive fixed-size integers are compiled into one `struct.Struct`, so decoding costs a handful of C
calls per frame rather than one Python step per field.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Generic, TypeVar

from ..errors import DecodeError

T = TypeVar("T")
_STRUCT_CODE = {(1, False): "B", (1, True): "b", (2, False): "H", (2, True): "h"}


@dataclass(frozen=True)
class Int:
    """An integer of 1–3 bytes; its value is `(raw - offset) / div`, or `convert(raw)` for enums and flags."""

    name: str
    size: int = 1
    signed: bool = False
    div: int = 1
    offset: int = 0
    convert: Callable[[int], Any] | None = None

    def value(self, raw: int) -> Any:
        if self.convert is not None:
            return self.convert(raw)
        if self.div == 1 and self.offset == 0:
            return raw
        return (raw - self.offset) / self.div

    def raw(self, value: Any) -> int:
        raw = int(value) if self.convert is not None else round(value * self.div + self.offset)
        bits = 8 * self.size
        low, high = (-(1 << bits - 1), (1 << bits - 1) - 1) if self.signed else (0, (1 << bits) - 1)
        if not low <= raw <= high:
            raise ValueError(f"{self.name}={value!r} (raw {raw}) does not fit {self.size} byte(s)")
        return raw

    def to_bytes(self, value: Any) -> bytes:
        return self.raw(value).to_bytes(self.size, "big", signed=self.signed)


@dataclass(frozen=True)
class Array:
    """Items of one kind, preceded by a 1-byte count unless `count` fixes it."""

    name: str
    item: Int
    count: int | None = None


@dataclass(frozen=True)
class Text:
    """Fixed-size ASCII, padded with `pad`; the padding is dropped on decode."""

    name: str
    size: int
    pad: bytes = b"\0"


@dataclass(frozen=True)
class Repeat:
    """A 1-byte count followed by that many blocks of a nested layout (fan-out replies)."""

    name: str
    layout: Layout[Any]


@dataclass(frozen=True)
class Rest:
    """Whatever bytes follow, kept verbatim (some firmwares append bytes the spec does not have)."""

    name: str


@dataclass(frozen=True)
class Capacities:
    """remain(2) udi(1) total(2) cycles(2), then for udi >= 4 remain(3) total(3), in mAh.

    Modules above 65 Ah announce udi = 4, send 0xFFFF in the 2-byte fields and the real values in 3 bytes."""

    remaining: str = "remaining_capacity"
    udi: str = "user_defined_items"
    total: str = "total_capacity"
    cycles: str = "cycles"


Element = Int | Array | Text | Repeat | Rest | Capacities
_CAPACITY_HEAD = struct.Struct(">HBHH")


@lru_cache(maxsize=512)
def _array_struct(code: str, count: int) -> struct.Struct:
    return struct.Struct(f">{count}{code}")


def _short(name: str, pos: int, need: int, have: int) -> DecodeError:
    return DecodeError(
        f"INFO too short for field '{name}' at byte offset {pos}: needs {need} byte(s), {max(have, 0)} left"
    )


class _IntRun:
    """Consecutive 1- and 2-byte integers read with one struct call."""

    def __init__(self, fields: list[Int]) -> None:
        self.fields = fields
        self.struct = struct.Struct(">" + "".join(_STRUCT_CODE[f.size, f.signed] for f in fields))
        self.plain = [f.convert is None and f.div == 1 and f.offset == 0 for f in fields]

    def read(self, buf: bytes, pos: int, out: dict[str, Any]) -> int:
        end = pos + self.struct.size
        if end > len(buf):
            raise _short(self.fields[0].name, pos, self.struct.size, len(buf) - pos)
        for field, plain, raw in zip(self.fields, self.plain, self.struct.unpack_from(buf, pos), strict=True):
            out[field.name] = raw if plain else field.value(raw)
        return end

    def write(self, obj: Any, out: bytearray) -> None:
        out += self.struct.pack(*(f.raw(getattr(obj, f.name)) for f in self.fields))


def _read(element: Element, buf: bytes, pos: int, out: dict[str, Any]) -> int:
    size = len(buf)
    match element:
        case Int(name=name, size=width):
            if pos + width > size:
                raise _short(name, pos, width, size - pos)
            raw = int.from_bytes(buf[pos : pos + width], "big", signed=element.signed)
            out[name] = element.value(raw)
            return pos + width
        case Array(name=name, item=item, count=count):
            if count is None:
                if pos >= size:
                    raise _short(name + " count", pos, 1, 0)
                count = buf[pos]
                pos += 1
            unpack = _array_struct(_STRUCT_CODE[item.size, item.signed], count)
            if pos + unpack.size > size:
                raise _short(f"{name} ({count} items)", pos, unpack.size, size - pos)
            raws = unpack.unpack_from(buf, pos)
            if item.convert is not None:
                out[name] = tuple(map(item.convert, raws))
            elif item.div == 1 and item.offset == 0:
                out[name] = raws
            else:  # inlined scaling: a call per item would dominate the decode time
                div, offset = item.div, item.offset
                out[name] = tuple([(raw - offset) / div for raw in raws])
            return pos + unpack.size
        case Text(name=name, size=width):
            if pos + width > size:
                raise _short(name, pos, width, size - pos)
            out[name] = buf[pos : pos + width].rstrip(element.pad).decode("latin-1")
            return pos + width
        case Repeat(name=name, layout=layout):
            if pos >= size:
                raise _short(name + " count", pos, 1, 0)
            blocks = []
            pos += 1
            for _ in range(buf[pos - 1]):
                block, pos = layout.read(buf, pos)
                blocks.append(block)
            out[name] = tuple(blocks)
            return pos
        case Rest(name=name):
            out[name] = bytes(buf[pos:])
            return size
        case Capacities():
            if pos + 7 > size:
                raise _short(element.remaining, pos, 7, size - pos)
            remaining, udi, total, cycles = _CAPACITY_HEAD.unpack_from(buf, pos)
            pos += 7
            if udi >= 4:
                if pos + 6 > size:
                    raise _short(f"3-byte capacities (user-defined items {udi})", pos, 6, size - pos)
                remaining = int.from_bytes(buf[pos : pos + 3], "big")
                total = int.from_bytes(buf[pos + 3 : pos + 6], "big")
                pos += 6
            out[element.remaining] = remaining / 1000
            out[element.udi] = udi
            out[element.total] = total / 1000
            out[element.cycles] = cycles
            return pos
    raise TypeError(f"not a layout element: {element!r}")


def _write(element: Element, obj: Any, out: bytearray) -> None:
    match element:
        case Int(name=name):
            out += element.to_bytes(getattr(obj, name))
        case Array(name=name, item=item, count=count):
            values = getattr(obj, name)
            if count is None:
                out.append(len(values))
            elif len(values) != count:
                raise ValueError(f"{name} needs exactly {count} items, got {len(values)}")
            for value in values:
                out += item.to_bytes(value)
        case Text(name=name, size=width):
            text = getattr(obj, name).encode("latin-1")
            if len(text) > width:
                raise ValueError(f"{name}={text!r} is longer than {width} bytes")
            out += text + element.pad * (width - len(text))
        case Repeat(name=name, layout=layout):
            blocks = getattr(obj, name)
            out.append(len(blocks))
            for block in blocks:
                layout.write(block, out)
        case Rest(name=name):
            out += getattr(obj, name)
        case Capacities():
            udi = getattr(obj, element.udi)
            remaining = round(getattr(obj, element.remaining) * 1000)
            total = round(getattr(obj, element.total) * 1000)
            cycles = getattr(obj, element.cycles)
            if udi >= 4:
                out += _CAPACITY_HEAD.pack(0xFFFF, udi, 0xFFFF, cycles)
                out += remaining.to_bytes(3, "big") + total.to_bytes(3, "big")
            else:
                out += _CAPACITY_HEAD.pack(remaining, udi, total, cycles)
        case _:
            raise TypeError(f"not a layout element: {element!r}")


class Layout(Generic[T]):
    """The INFO of one reply, as an ordered list of elements producing the dataclass `cls`."""

    def __init__(self, cls: Callable[..., T], *elements: Element) -> None:
        self.cls = cls
        self.elements = elements
        self._steps = self._compile(elements)

    @staticmethod
    def _compile(elements: Sequence[Element]) -> list[Any]:
        steps: list[Any] = []
        run: list[Int] = []
        for element in elements:
            if isinstance(element, Int) and element.size <= 2:
                run.append(element)
                continue
            if run:
                steps.append(_IntRun(run))
                run = []
            steps.append(element)
        if run:
            steps.append(_IntRun(run))
        return steps

    def read(self, buf: bytes, pos: int = 0) -> tuple[T, int]:
        """Decode starting at `pos`; returns the result and the offset after it."""
        out: dict[str, Any] = {}
        for step in self._steps:
            pos = step.read(buf, pos, out) if isinstance(step, _IntRun) else _read(step, buf, pos, out)
        return self.cls(**out), pos

    def decode(self, info: bytes, exact: bool = False) -> T:
        """Decode a whole INFO. With `exact`, bytes left over are an error rather than ignored."""
        result, end = self.read(info)
        if exact and end != len(info):
            raise DecodeError(f"{len(info) - end} byte(s) left over after the last field at offset {end}")
        return result

    def write(self, obj: Any, out: bytearray) -> None:
        for step in self._steps:
            if isinstance(step, _IntRun):
                step.write(obj, out)
            else:
                _write(step, obj, out)

    def encode(self, obj: Any) -> bytes:
        out = bytearray()
        self.write(obj, out)
        return bytes(out)
