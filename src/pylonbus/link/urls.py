"""What a port may be: a device path, `socket://`, `rfc2217://` or our `sim://`; the pyserial settings each is
opened with, and what an open that failed means for the user."""

from __future__ import annotations

import errno
import urllib.parse
from typing import Any

import serial

from ..errors import PortBusyError, PortError

# pyserial imports `pylonbus.sim.urlhandler.protocol_sim` on the first sim:// URL: the simulator is loaded
# only by the programs that use it.
SIM_URL_HANDLERS = "pylonbus.sim.urlhandler"
NETWORK_SCHEMES = {"socket": "socket://HOST:PORT", "rfc2217": "rfc2217://HOST:PORT"}


def register_url_handler() -> None:
    """Make `serial.serial_for_url("sim://…")` open an in-process simulator."""
    if SIM_URL_HANDLERS not in serial.protocol_handler_packages:
        serial.protocol_handler_packages.append(SIM_URL_HANDLERS)


def open_settings(port: str, baud: int) -> dict[str, Any]:
    """pyserial settings for `port`. A network URL must name host and port (pyserial's own message for a
    missing port is a TypeError's); a local device is opened exclusively, with a write timeout, which
    pyserial's RFC 2217 class refuses."""
    scheme, sep, _ = port.partition("://")
    if not sep:
        return {"baudrate": baud, "timeout": 0.1, "write_timeout": 2.0, "exclusive": True}
    if scheme in NETWORK_SCHEMES:
        parts = urllib.parse.urlsplit(port)
        try:
            number = parts.port
        except ValueError:
            number = None
        if not parts.hostname or not number:
            raise ValueError(f"the URL names no host and port; expected {NETWORK_SCHEMES[scheme]}")
    return {"baudrate": baud, "timeout": 0.1}


def port_error(port: str, error: Exception, adapter: str = "USB-RS485") -> PortError:
    """A PortError whose message says what to do about `error` (`adapter`: the kind the port should be)."""
    text = str(error)
    code = getattr(error, "errno", None)
    if code == errno.EACCES or "Permission denied" in text:
        return PortError(
            f"cannot open {port}: permission denied — add your user to the 'dialout' group "
            "(sudo usermod -aG dialout $USER, then log in again) or install contrib/99-pylontech.rules"
        )
    if "exclusively lock" in text or "Resource temporarily unavailable" in text or code == errno.EBUSY:
        return PortBusyError(
            f"{port} is in use by another process (find it with: fuser -v {port}); stop it or use another adapter"
        )
    if code == errno.ENOENT or "No such file" in text:
        return PortError(f"cannot open {port}: no such device. Is the {adapter} adapter plugged in? (ls /dev/tty*)")
    if "Inappropriate ioctl" in text or code == errno.ENOTTY:
        return PortError(f"cannot open {port}: not a serial port; give the adapter's device, e.g. /dev/ttyUSB0")
    if "Connection refused" in text:
        return PortError(f"cannot open {port}: connection refused — is the gateway on and is this its TCP port?")
    if "Name or service not known" in text or "name resolution" in text:
        return PortError(f"cannot open {port}: {text.rpartition(': ')[2]}; check the host name of the URL")
    if isinstance(error, ValueError):
        return PortError(
            f"cannot open {port}: {text}; a port is a device path, socket://HOST:PORT, rfc2217://HOST:PORT "
            "or sim://?stack=US3000C*3"
        )
    return PortError(f"cannot open {port}: {text}")
