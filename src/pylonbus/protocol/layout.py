"""Declarative INFO layouts: a command's reply is described once, as data; each layout is turned into
its own reading function for the decoder and, in reverse, walked to encode replies for the simulator.
"""

from __future__ import annotations

import linecache
import math
import struct
from collections.abc import Callable
from dataclasses import dataclass, fields, is_dataclass
from functools import lru_cache
from typing import Any, Generic, TypeVar

from ..errors import DecodeError, ImplausibleValue

T = TypeVar("T")
_STRUCT_CODE = {(1, False): "B", (1, True): "b", (2, False): "H", (2, True): "h", (4, False): "I", (4, True): "i"}


@dataclass(frozen=True)
class Int:
    """An integer of 1–4 bytes (or more, read one at a time); its value is `(raw - offset) / div`, or
    `convert(raw)` for enums and flags. `plausible` bounds the value a real battery can send; outside it the
    reply raises `ImplausibleValue`."""

    name: str
    size: int = 1
    signed: bool = False
    div: int = 1
    offset: int = 0
    convert: Callable[[int], Any] | None = None
    unit: str = ""
    plausible: tuple[float, float] | None = None

    def raw_bounds(self) -> tuple[int, int] | None:
        """`plausible` in wire units, so that a check costs no scaling."""
        if self.plausible is None:
            return None
        low, high = self.plausible
        return math.ceil(low * self.div + self.offset), math.floor(high * self.div + self.offset)

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
    """Items of one kind, preceded by a 1-byte count unless `count` fixes it; a count outside `counts` is
    implausible. `more` items follow beyond what the count byte says (EG4 counts 4 temperatures and sends 6)."""

    name: str
    item: Int
    count: int | None = None
    counts: tuple[int, int] | None = None
    more: int = 0


@dataclass(frozen=True)
class Text:
    """Fixed-size ASCII (size None: the rest of the INFO), padded with `pad`; the padding (and NUL, which some
    firmwares pad with) is dropped on decode. A control character left in the text is implausible: no battery
    names itself with a newline, and a serial is written into line protocol, topics and labels."""

    name: str
    size: int | None
    pad: bytes = b"\0"


@dataclass(frozen=True)
class Repeat:
    """A 1-byte count (at least 1) followed by that many blocks of a nested layout (fan-out replies)."""

    name: str
    layout: Layout[Any]


@dataclass(frozen=True)
class Rest:
    """The bytes that end the INFO, kept verbatim: a tail some firmwares append to what the spec has
    (the 33-byte 0x44 of US2000C/US3000C). More than `at_most` bytes is an error, not a longer tail."""

    name: str
    at_most: int | None


@dataclass(frozen=True)
class Tail:
    """Bytes kept verbatim whose number depends on an earlier integer field `key` (its value -> `sizes`), as
    PACE's user-defined count decides what follows the design capacity; a value `sizes` lacks is an error."""

    name: str
    key: str
    sizes: dict[int, int]


@dataclass(frozen=True)
class Capacities:
    """remain(2) udi(1) total(2) cycles(2), then for udi >= 4 remain(3) total(3), in mAh.

    Modules above 65 Ah announce udi = 4, send 0xFFFF in the 2-byte fields and the real values in 3 bytes."""

    remaining: str = "remaining_capacity"
    udi: str = "user_defined_items"
    total: str = "total_capacity"
    cycles: str = "cycles"


Element = Int | Array | Text | Repeat | Rest | Tail | Capacities
_CAPACITY_HEAD = struct.Struct(">HBHH")
_SHAPES = 16  # shaped readers kept a layout; a frame of a shape beyond them is read by the generic reader
#: The bytes a Text may hold, to delete: what is left are control characters (C0, DEL and C1 in latin-1).
_PRINTABLE = bytes([*range(0x20, 0x7F), *range(0xA0, 0x100)])


@lru_cache(maxsize=8)
def _array_structs(code: str) -> tuple[struct.Struct, ...]:
    """One struct per possible count (the count is a byte), so choosing one is an index, not a call."""
    return tuple(struct.Struct(f">{count}{code}") for count in range(256))


def _implausible(element: Int | Array, value: Any) -> ImplausibleValue:
    """The error for a value outside what the element allows; for an array, its first offending item."""
    if isinstance(element, Array):
        item = element.item
        if element.counts is not None and not element.counts[0] <= len(value) <= element.counts[1]:
            return ImplausibleValue(f"{element.name} count", len(value), element.counts)
        bounds = item.raw_bounds()
        assert bounds is not None
        index, raw = next((i, raw) for i, raw in enumerate(value) if not bounds[0] <= raw <= bounds[1])
        return ImplausibleValue(
            f"{element.name}[{index + 1}]", (raw - item.offset) / item.div, item.plausible, item.unit
        )
    return ImplausibleValue(element.name, (value - element.offset) / element.div, element.plausible, element.unit)


def _short(name: str, pos: int, need: int, have: int) -> DecodeError:
    return DecodeError(
        f"INFO too short for field '{name}' at byte offset {pos}: needs {need} byte(s), {max(have, 0)} left"
    )


def arguments(cls: Any, values: list[tuple[str, str]]) -> str:
    """The source of a result's constructor arguments, from (field name, expression): positional in the order
    of a dataclass's fields as far as the values give them (keywords cost a 0x42 frame 0.4 µs), by keyword
    after that."""
    given = dict(values)
    positional = []
    for f in fields(cls) if is_dataclass(cls) else ():
        if not f.init or f.kw_only or f.name not in given:
            break
        positional.append(given.pop(f.name))
    return ", ".join([*positional, *(f"{name}={value}" for name, value in given.items())])


def scaled(item: Int, raw: str, const: Callable[[Any], str]) -> str:
    """The source of an item's value from the name of its raw integer; `const` names a constant it needs."""
    if item.convert is not None:
        return f"{const(item.convert)}({raw})"
    if item.offset:
        raw = f"({raw} - {item.offset})"
    return f"{raw} / {item.div}" if item.div != 1 else raw


def code_file(lines: list[str], label: str, namespace: dict[str, Any]) -> dict[str, Any]:
    """Runs generated source in `namespace` (returned), under a file name of its own."""
    source = "\n".join(lines) + "\n"
    filename = f"<layout {label}>"
    # Registered so that a traceback through the generated reader shows its lines.
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    exec(compile(source, filename, "exec"), namespace)
    return namespace


class _Reader:
    """Writes the source of one function that reads a layout: every element becomes straight-line code
    with its sizes, scales and checks as constants, so a frame costs a few C calls and no dispatch.
    The layout stays the single description; this is only how it is executed (measured: 1.7x faster
    than walking the elements)."""

    def __init__(self, layout: Layout[Any]) -> None:
        self.namespace: dict[str, Any] = {
            "_short": _short,
            "_implausible": _implausible,
            "ImplausibleValue": ImplausibleValue,
            "DecodeError": DecodeError,
            "cls": layout.cls,
        }
        self.lines = ["def read(buf, pos=0):", "    size = len(buf)"]
        self.values: list[tuple[str, str]] = []  # (field name, expression) for the constructor call
        run: list[Int] = []
        for element in layout.elements:
            if isinstance(element, Int) and (element.size, element.signed) in _STRUCT_CODE:  # struct has no 3 bytes
                run.append(element)
                continue
            self.int_run(run)
            run = []
            self.element(element)
        self.int_run(run)
        self.emit(f"return cls({arguments(layout.cls, self.values)}), pos")

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

    def bounded(self, item: Int, raw: str) -> None:
        bounds = item.raw_bounds()
        if bounds is not None:
            self.emit(f"if not {bounds[0]} <= {raw} <= {bounds[1]}: raise _implausible({self.const(item)}, {raw})")

    def scaled(self, item: Int, raw: str) -> str:
        return scaled(item, raw, self.const)

    def int_run(self, fields: list[Int]) -> None:
        if not fields:
            return
        unpack = struct.Struct(">" + "".join(_STRUCT_CODE[f.size, f.signed] for f in fields))
        raws = [f"r{len(self.values) + i}" for i in range(len(fields))]
        self.check(str(unpack.size), repr(fields[0].name))
        self.emit(f"{', '.join(raws)}, = {self.const(unpack)}.unpack_from(buf, pos)", f"pos += {unpack.size}")
        for f, raw in zip(fields, raws, strict=True):
            self.bounded(f, raw)
        self.values += [(f.name, self.scaled(f, raw)) for f, raw in zip(fields, raws, strict=True)]

    def element(self, element: Element) -> None:
        var = self.var()
        match element:
            case Int(name=name, size=width, signed=signed):
                self.check(str(width), repr(name))
                self.emit(f"{var} = int.from_bytes(buf[pos : pos + {width}], 'big', signed={signed})")
                self.emit(f"pos += {width}")
                self.bounded(element, var)
                self.values.append((name, self.scaled(element, var)))
            case Array(name=name, item=item, count=count, counts=counts, more=more):
                structs = self.const(_array_structs(_STRUCT_CODE[item.size, item.signed]))
                if count is None:
                    self.check("1", repr(name + " count"))
                    self.emit(f"count = buf[pos] + {more}" if more else "count = buf[pos]", "pos += 1")
                else:
                    self.emit(f"count = {count}")
                self.emit(f"unpack = {structs}[count]")
                self.check("unpack.size", f"f'{name} ({{count}} items)'")
                raws = "unpack.unpack_from(buf, pos)"
                bounds = item.raw_bounds()
                if bounds is not None or counts is not None:
                    self.emit(f"raws = {raws}")
                    raws = "raws"
                    tests = [f"not {counts[0]} <= count <= {counts[1]}"] if counts is not None else []
                    if bounds is not None:  # an empty array is only implausible by its count
                        test = f"raws and (min(raws) < {bounds[0]} or max(raws) > {bounds[1]})"
                        if item.size == 2 and bounds[0] >= 0 and bounds[1] < 0x8000:
                            # The high bytes alone prove most arrays plausible with one C call: only one
                            # outside the bounds' inner high bytes needs min/max (measured: 0.1 µs, not 0.4).
                            inner = self.const(bytes(range((bounds[0] >> 8) + 1, bounds[1] >> 8)))
                            test = f"buf[pos : pos + unpack.size : 2].translate(None, {inner}) and ({test})"
                        tests.append(test)
                    self.emit(f"if {' or '.join(tests)}: raise _implausible({self.const(element)}, raws)")
                if item.convert is not None:
                    self.emit(f"{var} = tuple(map({self.const(item.convert)}, {raws}))")
                elif item.div == 1 and item.offset == 0:
                    self.emit(f"{var} = {raws}")
                else:
                    self.emit(f"{var} = tuple([{self.scaled(item, 'raw')} for raw in {raws}])")
                self.emit("pos += unpack.size")
                self.values.append((name, var))
            case Text(name=name, size=width, pad=pad):
                if width is not None:
                    self.check(str(width), repr(name))
                end = "size" if width is None else f"pos + {width}"
                strip = pad + b"\0" if pad != b"\0" else pad
                self.emit(f"{var} = buf[pos : {end}].rstrip({strip!r})")
                self.emit(f"if {var}.translate(None, {self.const(_PRINTABLE)}):")
                self.emit(f"    raise ImplausibleValue({name!r}, {var}.decode('latin-1'), None)")
                self.emit(f"{var} = {var}.decode('latin-1')", f"pos = {end}")
                self.values.append((name, var))
            case Tail(name=name, key=key, sizes=sizes):
                value = dict(self.values)[key]
                self.emit(f"count = {self.const(sizes)}.get({value})", "if count is None:")
                known = ", ".join(map(str, sizes))
                self.emit(f"    raise DecodeError(f'{key} is {{{value}}}: the {name} after it is known for {known}')")
                self.check("count", repr(name))
                self.emit(f"{var} = bytes(buf[pos : pos + count])", "pos += count")
                self.values.append((name, var))
            case Repeat(name=name, layout=layout):
                self.check("1", repr(name + " count"))
                block = f"{self.const(layout)}.read"  # looked up each time: it changes with the shape read
                self.emit(f"if not buf[pos]: raise ImplausibleValue({name + ' count'!r}, 0, (1, 255))")
                self.emit("blocks = []", "pos += 1", "for index in range(buf[pos - 1]):")
                self.emit("    try:", f"        block, pos = {block}(buf, pos)")
                self.emit("    except ImplausibleValue as error:", "        error.pack = index + 1", "        raise")
                self.emit("    blocks.append(block)", f"{var} = tuple(blocks)")
                self.values.append((name, var))
            case Rest(name=name, at_most=at_most):
                if at_most is not None:
                    self.emit(f"if size - pos > {at_most}:")
                    self.emit(
                        f"    raise DecodeError(f'{{size - pos}} byte(s) after the last field at offset {{pos}}; "
                        f"the {name} tail of this reply has at most {at_most}')"
                    )
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
        read: Callable[[bytes, int], tuple[Any, int]] = code_file(self.lines, label, self.namespace)["read"]
        return read


def _write(element: Element, obj: Any, out: bytearray) -> None:
    match element:
        case Int(name=name):
            out += element.to_bytes(getattr(obj, name))
        case Array(name=name, item=item, count=count, more=more):
            values = getattr(obj, name)
            if count is None:
                out.append(len(values) - more)
            elif len(values) != count:
                raise ValueError(f"{name} needs exactly {count} items, got {len(values)}")
            for value in values:
                out += item.to_bytes(value)
        case Text(name=name, size=width):
            text = getattr(obj, name).encode("latin-1")
            if width is None:
                width = len(text)
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
        case Tail(name=name, key=key, sizes=sizes):
            tail = getattr(obj, name)
            if len(tail) != sizes.get(getattr(obj, key)):
                raise ValueError(f"{name} of {len(tail)} bytes does not fit {key}={getattr(obj, key)}")
            out += tail
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
        self.generic: Callable[[bytes, int], tuple[T, int]] = _Reader(self).function(getattr(cls, "__name__", "?"))
        """Reads any frame of the layout (and raises every error); `read` is the one to call."""
        self.read: Callable[[bytes, int], tuple[T, int]] = self._switch
        """Decode starting at an offset; returns the result and the offset after it. The reader of the shape
        last read (`shaped.py`), or the generic one where no shaped reader reads the layout."""
        self._shapes: dict[tuple[int, ...], Callable[[bytes, int], tuple[T, int]]] = {}

    def _switch(self, buf: bytes, pos: int = 0) -> tuple[T, int]:
        """Reads a frame the current reader does not fit (the first, or one of another shape) with the generic
        reader, then makes the reader of its shape the current one."""
        result, end = self.generic(buf, pos)
        from .shaped import shape_of, shaped_reader  # here, not above: it reads this module's elements

        shape = shape_of(self, result)
        if shape is None:
            self.read = self.generic
            return result, end
        reader = self._shapes.get(shape)
        if reader is None and len(self._shapes) < _SHAPES:
            reader = self._shapes[shape] = shaped_reader(self, shape, self._switch)
        if reader is not None:
            self.read = reader
        return result, end

    @property
    def raw(self) -> bool:
        """Whether the layout only keeps the INFO whole: it reads any frame, so it proves nothing of one."""
        return len(self.elements) == 1 and isinstance(self.elements[0], Rest) and self.elements[0].at_most is None

    def decode(self, info: bytes) -> T:
        """Decode a whole INFO: bytes left over after the last field are an error (a layout that allows a
        tail names it with `Rest`)."""
        result, end = self.read(info, 0)
        if end != len(info):
            raise DecodeError(f"{len(info) - end} byte(s) left over after the last field at offset {end}")
        return result

    def write(self, obj: Any, out: bytearray) -> None:
        for element in self.elements:
            _write(element, obj, out)

    def encode(self, obj: Any) -> bytes:
        out = bytearray()
        self.write(obj, out)
        return bytes(out)

    def units(self) -> dict[str, str]:
        """The unit of each field that has one (an array's is its items'); nested layouts name their own."""
        out: dict[str, str] = {}
        for element in self.elements:
            match element:
                case Int(name=name, unit=unit) | Array(name=name, item=Int(unit=unit)) if unit:
                    out[name] = unit
                case Capacities():
                    out[element.remaining] = out[element.total] = "Ah"
        return out
