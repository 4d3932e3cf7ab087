"""A udev rule that gives the USB-RS485 adapter a battery answered on a stable name: its vendor, product and
serial from the kernel's USB description (pyserial's `list_ports`, which reads sysfs), ready for
/etc/udev/rules.d/. A port without a USB identity (a pseudo-terminal, a built-in UART, a network gateway) gets
no rule, and the reason in one line."""

from __future__ import annotations

import os
import re
from typing import Protocol

from ..errors import PylonbusError

RULE_NAME = "ttyUSB_pylontech"  # the default port of both programs
RULE_FILE = "/etc/udev/rules.d/99-pylontech.rules"
#: What a value between udev's double quotes may hold: it has no escapes, so anything else is left out.
_PLAIN = re.compile(r"[A-Za-z0-9 ._:/+-]+")


class NoUsbIdentity(PylonbusError):
    """The port is not a USB serial adapter that udev can tell apart."""


class PortInfo(Protocol):
    """What a rule is made from: the fields of pyserial's ListPortInfo."""

    device: str
    vid: int | None
    pid: int | None
    serial_number: str | None
    manufacturer: str | None
    product: str | None


def usb_identity(device: str) -> PortInfo:
    """The USB description of the adapter behind `device` (a path or a symlink to it)."""
    if "://" in device:
        raise NoUsbIdentity(f"{device} is a network port, not a USB adapter: a udev rule names local adapters only")
    from serial.tools import list_ports

    real = os.path.realpath(device)
    for info in list_ports.comports():
        if os.path.realpath(info.device) == real and info.vid is not None:
            return info
    raise NoUsbIdentity(
        f"{device} ({real}) has no USB identity (a pseudo-terminal, a built-in UART or a gateway's driver): "
        "no udev rule can name it; use its path with -d"
    )


def render_rule(info: PortInfo, name: str = RULE_NAME) -> str:
    """The rule file's text for the adapter `info` describes, with how to install it."""
    if info.vid is None or info.pid is None:
        raise NoUsbIdentity(f"{info.device} has no USB vendor and product id: no udev rule can name it")
    what = ", ".join(part for part in (info.product, info.manufacturer) if part and _PLAIN.fullmatch(part))
    lines = [
        f"# pylonbus: the adapter a Pylontech battery answered on ({info.device}{': ' + what if what else ''}).",
        f"# Install: save as {RULE_FILE}, then: udevadm control --reload && udevadm trigger",
        f"# It appears as /dev/{name}.",
    ]
    match = [
        'SUBSYSTEM=="tty"',
        f'ATTRS{{idVendor}}=="{info.vid:04x}"',
        f'ATTRS{{idProduct}}=="{info.pid:04x}"',
    ]
    serial = info.serial_number
    if serial and _PLAIN.fullmatch(serial):
        match.append(f'ATTRS{{serial}}=="{serial}"')
    else:
        lines.append(
            "# This adapter reports no serial number udev can match (many CH340 ones): the rule names every adapter of "
            "this vendor and product, so keep only one of them plugged in."
        )
    match += [f'SYMLINK+="{name}"', 'MODE="0660"', 'GROUP="dialout"']
    return "\n".join([*lines, ", ".join(match)]) + "\n"
