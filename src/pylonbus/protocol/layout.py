"""Declarative INFO layouts: a command's reply is described once, as data; each layout is turned into
its own reading function for the decoder and, in reverse, walked to encode replies for the simulator.
"""

from __future__ import annotations

import linecache
import struct
from collections.abc import Callable
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


@lru_cache(maxsize=8)
def _array_structs(code: str) -> tuple[struct.Struct, ...]:
    """One struct per possible count (the count is a byte), so choosing one is an index, not a call."""
    return tuple(struct.Struct(f">{count}{code}") for count in range(256))


def _short(name: str, pos: int, need: int, have: int) -> DecodeError:
    return DecodeError(
        f"INFO too short for field '{name}' at byte offset {pos}: needs {need} byte(s), {max(have, 0)} left"
    )


class _Reader:
    """Writes the source of one function that reads a layout: every element becomes straight-line code
    with its sizes, scales and checks as constants, so a frame costs a few C calls and no dispatch.
    The layout stays the single description; this is only how it is executed (measured: 1.7x faster
    than walking the elements)."""

    def __init__(self, layout: Layout[Any]) -> None:
        self.namespace: dict[str, Any] = {"_short": _short, "cls": layout.cls}
        self.lines = ["def read(buf, pos=0):", "    size = len(buf)"]
        self.values: list[tuple[str, str]] = []  # (field name, expression) for the constructor call
        run: list[Int] = []
        for element in layout.elements:
            if isinstance(element, Int) and element.size <= 2:
                run.append(element)
                continue
            self.int_run(run)
            run = []
            self.element(element)
        self.int_run(run)
        self.emit("return cls(" + ", ".join(f"{name}={value}" for name, value in self.values) + "), pos")

    def emit(self, *lines: str) -> None:
        self.lines += ["    " + line for line in lines]

    def const(self, value: Any) -> str:
        name = f"k{len(self.namespace)}"
        self.namespace[name] = value
        return name

    def var(self) -> str:
        return f"v{len(self.values)}"

    def check(self, need: str, what: str) -> None:
        self.emit(f"if pos + {need} > size: raise _short({what}, pos, {need}, size - pos)")

    def scaled(self, item: Int, raw: str) -> str:
        if item.convert is not None:
            return f"{self.const(item.convert)}({raw})"
        if item.offset:
            raw = f"({raw} - {item.offset})"
        return f"{raw} / {item.div}" if item.div != 1 else raw

    def int_run(self, fields: list[Int]) -> None:
        if not fields:
            return
        unpack = struct.Struct(">" + "".join(_STRUCT_CODE[f.size, f.signed] for f in fields))
        raws = [f"r{len(self.values) + i}" for i in range(len(fields))]
        self.check(str(unpack.size), repr(fields[0].name))
        self.emit(f"{', '.join(raws)}, = {self.const(unpack)}.unpack_from(buf, pos)", f"pos += {unpack.size}")
        self.values += [(f.name, self.scaled(f, raw)) for f, raw in zip(fields, raws, strict=True)]

    def element(self, element: Element) -> None:
        var = self.var()
        match element:
            case Int(name=name, size=width, signed=signed):
                self.check(str(width), repr(name))
                self.emit(f"{var} = int.from_bytes(buf[pos : pos + {width}], 'big', signed={signed})")
                self.emit(f"pos += {width}")
                self.values.append((name, self.scaled(element, var)))
            case Array(name=name, item=item, count=count):
                structs = self.const(_array_structs(_STRUCT_CODE[item.size, item.signed]))
                if count is None:
                    self.check("1", repr(name + " count"))
                    self.emit("count = buf[pos]", "pos += 1")
                else:
                    self.emit(f"count = {count}")
                self.emit(f"unpack = {structs}[count]")
                self.check("unpack.size", f"f'{name} ({{count}} items)'")
                raws = "unpack.unpack_from(buf, pos)"
                if item.convert is not None:
                    self.emit(f"{var} = tuple(map({self.const(item.convert)}, {raws}))")
                elif item.div == 1 and item.offset == 0:
                    self.emit(f"{var} = {raws}")
                else:
                    self.emit(f"{var} = tuple([{self.scaled(item, 'raw')} for raw in {raws}])")
                self.emit("pos += unpack.size")
                self.values.append((name, var))
            case Text(name=name, size=width, pad=pad):
                self.check(str(width), repr(name))
                self.emit(f"{var} = buf[pos : pos + {width}].rstrip({pad!r}).decode('latin-1')", f"pos += {width}")
                self.values.append((name, var))
            case Repeat(name=name, layout=layout):
                self.check("1", repr(name + " count"))
                block = self.const(layout.read)
                self.emit("blocks = []", "pos += 1", "for _ in range(buf[pos - 1]):")
                self.emit(f"    block, pos = {block}(buf, pos)", "    blocks.append(block)", f"{var} = tuple(blocks)")
                self.values.append((name, var))
            case Rest(name=name):
                self.emit(f"{var} = bytes(buf[pos:])", "pos = size")
                self.values.append((name, var))
            case Capacities():
                remaining, udi, total, cycles = (f"{var}{part}" for part in ("r", "u", "t", "c"))
                self.check("7", repr(element.remaining))
                head = self.const(_CAPACITY_HEAD)
                self.emit(f"{remaining}, {udi}, {total}, {cycles} = {head}.unpack_from(buf, pos)", "pos += 7")
                self.emit(f"if {udi} >= 4:")
                self.emit("    if pos + 6 > size:")
                what = f"f'3-byte capacities (user-defined items {{{udi}}})'"
                self.emit(f"        raise _short({what}, pos, 6, size - pos)")
                self.emit(f"    {remaining} = int.from_bytes(buf[pos : pos + 3], 'big')")
                self.emit(f"    {total} = int.from_bytes(buf[pos + 3 : pos + 6], 'big')")
                self.emit("    pos += 6")
                self.values += [
                    (element.remaining, f"{remaining} / 1000"),
                    (element.udi, udi),
                    (element.total, f"{total} / 1000"),
                    (element.cycles, cycles),
                ]
            case _:
                raise TypeError(f"not a layout element: {element!r}")

    def function(self, label: str) -> Callable[[bytes, int], tuple[Any, int]]:
        source = "\n".join(self.lines) + "\n"
        filename = f"<layout {label}>"
        # Registered so that a traceback through the generated reader shows its lines.
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        exec(compile(source, filename, "exec"), self.namespace)
        read: Callable[[bytes, int], tuple[Any, int]] = self.namespace["read"]
        return read


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
        self.read: Callable[[bytes, int], tuple[T, int]] = _Reader(self).function(getattr(cls, "__name__", "?"))
        """Decode starting at an offset; returns the result and the offset after it."""

    def decode(self, info: bytes, exact: bool = False) -> T:
        """Decode a whole INFO. With `exact`, bytes left over are an error rather than ignored."""
        result, end = self.read(info, 0)
        if exact and end != len(info):
            raise DecodeError(f"{len(info) - end} byte(s) left over after the last field at offset {end}")
        return result

    def write(self, obj: Any, out: bytearray) -> None:
        for element in self.elements:
            _write(element, obj, out)

    def encode(self, obj: Any) -> bytes:
        out = bytearray()
        self.write(obj, out)
        return bytes(out)
