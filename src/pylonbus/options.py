"""The settings a program can be given, and how a value of each is read from text: one parser serves a command-line
flag and a key of the config file alike, so both accept and refuse the same values with the same words."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path


class BadValue(argparse.ArgumentTypeError, ValueError):
    """A value a setting does not take. argparse shows an ArgumentTypeError's message after the option's name (a
    plain ValueError only as 'invalid value'); to everyone else it is a ValueError."""


def ranged(kind: Callable[[str], float], low: float, high: float | None) -> Callable[[str], float]:
    """A number of `kind` within low..high (no upper bound if `high` is None)."""

    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise BadValue(f"not a number: {text!r}") from None
        if value < low or (high is not None and value > high):
            bound = f"{low:g}-{high:g}" if high is not None else f"at least {low:g}"
            raise BadValue(f"{text} is out of range ({bound})")
        return value

    return parse


def whole(low: int, high: int | None) -> Callable[[str], int]:
    """An integer (decimal or 0x…) within low..high."""
    parse = ranged(lambda text: int(text, 0), low, high)
    return lambda text: int(parse(text))


def seconds(low: float = 0.001) -> Callable[[str], float]:
    return ranged(float, low, None)


def fraction() -> Callable[[str], float]:
    return ranged(float, 0.0, 1.0)


def verbosity(text: str) -> int:
    """`2`, and `vv`/`vvv` (argparse hands the extra v's of -vv over as the value)."""
    if text.isdigit():
        return int(text)
    if text and set(text) == {"v"}:
        return len(text) + 1
    raise BadValue(f"verbosity is a number 0-3 or -vv/-vvv, got {text!r}")


def numbers(low: int, high: int) -> Callable[[str], list[int]]:
    """`0`, `0,1`: whole numbers within low..high, each once, in order; at least one."""
    parse = whole(low, high)

    def read(text: str) -> list[int]:
        values = list(dict.fromkeys(parse(part) for part in text.split(",") if part.strip()))
        if not values:
            raise BadValue(f"give at least one number {low}-{high}, e.g. {low} or {low},{low + 1}")
        return values

    return read


def one_of(*choices: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text not in choices:
            raise BadValue(f"{text!r} is not one of {', '.join(choices)}")
        return text

    return parse


def site_name(text: str) -> str:
    """A site's name, the same as a tag value, a topic level and a Grafana variable: ASCII letters, digits, `_`,
    `-` and `.`."""
    if not text or len(text) > 64 or not all(char.isascii() and (char.isalnum() or char in "_.-") for char in text):
        raise BadValue(f"{text!r}: give 1-64 letters, digits, _, - or . (such as house or cabin-2)")
    return text


class Setting:
    """One setting: `key` in a table of the config file, `name` in the merged settings (`dest`, the command
    line's name for it, where that differs), the built-in `default`, and how a value is read (`parse` for text;
    `flag` for true/false). A plain class: the settings load for every --help, where a dataclass (7 ms to
    import) or a named tuple (2 ms to build) would show."""

    __slots__ = ("default", "flag", "key", "name", "parse")

    def __init__(
        self,
        key: str,
        dest: str = "",
        default: Any = None,
        parse: Callable[[str], Any] | None = None,
        flag: bool = False,
    ) -> None:
        self.key = key
        self.name = dest or key
        self.default = default
        self.parse = parse
        self.flag = flag

    def read(self, value: Any) -> Any:
        """A value of the config file, as the command line would have given it. Raises BadValue."""
        if self.flag:
            if not isinstance(value, bool):
                raise BadValue(f"must be true or false, not {value!r}")
            return value
        text = ",".join(map(str, value)) if isinstance(value, list) else str(value)
        return text if self.parse is None else self.parse(text)


def path(text: str) -> Path:
    from pathlib import Path  # when a path is given: pylontech --version loads no pathlib

    return Path(text)
