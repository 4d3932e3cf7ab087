"""`-d auto`: find the serial port a Pylontech stack answers on, and live beside Victron's serial-starter, which
probes every USB serial port of a GX device for its own products. A port is skipped when udev reserves it for
another service (`VE_SERVICE`), when a live process holds serial-starter's lock for it or has it open
exclusively, or when it is not a terminal; the others are probed for module 1 at the given baud rate."""

from __future__ import annotations

import contextlib
import logging
import os
import stat
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from ..errors import LinkError, PortError, PylonbusError
from ..protocol.families import DEFAULT, family
from .detect import AUTO, detect
from .link import Link
from .stack import Stack

log = logging.getLogger("pylonbus.link.autoport")

SERIAL_STARTER_LOCKS = Path("/var/lock/serial-starter")
#: udev's VE_SERVICE values of ports that belong to Victron services (VE.Direct, VE.Bus/MK3).
RESERVED_SERVICES = ("vedirect", "vedirect:default", "mkx")
PROBE_TRIES = 2  # the scan's tries, on module 1 only


def candidates(globs: str) -> list[Path]:
    """The devices the colon-separated globs name, each once however many names resolve to it, in order."""
    import glob  # here and below, not above: a daemon given its port takes only the port lock from this module

    seen: dict[Path, Path] = {}
    for pattern in globs.split(":"):
        for name in sorted(glob.glob(pattern.strip())) if pattern.strip() else []:
            seen.setdefault(Path(os.path.realpath(name)), Path(name))
    return list(seen.values())


def kernel_name(device: Path | str) -> str:
    """What serial-starter names a port's lock after: the basename of its resolved path (`ttyUSB0`)."""
    return Path(os.path.realpath(device)).name


def udev_service(device: Path) -> str | None:
    """The VE_SERVICE property udev gives the device, where udevadm exists."""
    import shutil
    import subprocess

    udevadm = shutil.which("udevadm")
    if udevadm is None:
        return None
    try:
        done = subprocess.run(
            [udevadm, "info", "--query=property", f"--name={os.path.realpath(device)}"],
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    for line in done.stdout.splitlines():
        key, _, value = line.partition("=")
        if key == "VE_SERVICE":
            return value
    return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


class PortLock:
    """serial-starter's lock of one port: a symlink `<dir>/<kernel name>` pointing to the holder's PID. A lock
    whose PID is gone is stale and removed."""

    def __init__(self, directory: Path, device: Path | str) -> None:
        self.path = directory / kernel_name(device)
        self.held = False

    def holder(self) -> int | None:
        """The live PID holding the lock (removing a stale lock), or None."""
        try:
            target = os.readlink(self.path)
        except FileNotFoundError:
            return None
        except OSError:
            return None
        pid = int(target) if target.isdigit() else None
        if pid is not None and _alive(pid):
            return pid
        log.info("removing the stale lock %s (PID %s is gone)", self.path, target)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        return None

    def acquire(self, stop: threading.Event, wait: float = 2.0) -> bool:
        """Take the lock, waiting while a live process holds it; False when `stop` was set first."""
        said = False
        while not stop.is_set():
            holder = self.holder()
            if holder is None:
                try:
                    os.symlink(str(os.getpid()), self.path)
                    self.held = True
                    return True
                except FileExistsError:
                    continue  # taken between our look and our try: look again
                except OSError as error:
                    raise PylonbusError(
                        f"cannot take the port lock {self.path}: {error.strerror}; run as the user serial-starter "
                        "runs as, or --serial-starter-lock off"
                    ) from None
            if not said:
                log.warning("%s is locked by PID %d (serial-starter or another program); waiting", self.path, holder)
                said = True
            stop.wait(wait)
        return False

    def release(self) -> None:
        if self.held and os.path.islink(self.path) and os.readlink(self.path) == str(os.getpid()):
            self.path.unlink()
        self.held = False


def find_port(
    globs: str,
    baud: int,
    group: int = 0,
    locks: Path | None = None,
    progress: Callable[[str], None] | None = None,
    bms: str = DEFAULT,
) -> str | None:
    """The first candidate port on which module 1 of `group` answers, or None; each skipped port is logged
    with its reason (at -v 1). `bms` is the family to probe for, `auto` any family."""
    import glob

    found = candidates(globs)
    for pattern in filter(None, (part.strip() for part in globs.split(":"))):
        if not glob.glob(pattern):
            log.info("-d auto: %s matches no device", pattern)
    what = "BMS" if bms == AUTO else family(bms).title
    for number, device in enumerate(found, 1):
        if progress is not None:
            progress(f"probing {device} ({number}/{len(found)})")
        reason = _unusable(device, locks)
        if reason:
            log.info("-d auto: skipping %s: %s", device, reason)
            continue
        link = Link(str(device), baud, tries=PROBE_TRIES)
        try:
            if detect(link, group) is not None if bms == AUTO else Stack(link, group, bms).probe(1):
                log.info("-d auto: a %s stack answers on %s", what, device)
                return str(device)
            log.info("-d auto: skipping %s: no %s module 1 in group %d answers at %d Bd", device, what, group, baud)
        except PortError as error:
            log.info("-d auto: skipping %s: %s", device, error)
        except LinkError as error:
            log.info("-d auto: skipping %s: %s", device, error)
        finally:
            link.close()
    return None


def _unusable(device: Path, locks: Path | None) -> str | None:
    try:
        mode = os.stat(device).st_mode
    except OSError as error:
        return error.strerror or str(error)
    if not stat.S_ISCHR(mode):
        return "not a terminal (not a character device)"
    service = udev_service(device)
    if service in RESERVED_SERVICES:
        return f"udev reserves it for the Victron service {service!r} (VE_SERVICE)"
    if locks is not None:
        holder = PortLock(locks, device).holder()
        if holder is not None:
            return f"locked by PID {holder} ({locks / kernel_name(device)})"
    return None


def default_lock_dir(option: str | None) -> Path | None:
    """--serial-starter-lock: a directory, `off`, or (not given) serial-starter's own where it exists."""
    if option == "off":
        return None
    if option:
        if not Path(option).is_dir():
            raise PylonbusError(
                f"--serial-starter-lock {option}: no such directory; give serial-starter's lock "
                "directory (/var/lock/serial-starter) or 'off'"
            )
        return Path(option)
    return SERIAL_STARTER_LOCKS if SERIAL_STARTER_LOCKS.is_dir() else None


def terminal_progress(text: str) -> None:
    """A progress line on a terminal, overwritten by the next."""
    if sys.stderr.isatty():
        print(f"\r\033[K{text}", end="", file=sys.stderr, flush=True)


def resolve(device: str, globs: str, baud: int, group: int, locks: Path | None, bms: str = DEFAULT) -> str | None:
    """`device` itself, or for `auto` the port a stack of `bms` answers on (None when none does)."""
    if device != AUTO:
        return device
    try:
        return find_port(globs, baud, group, locks, terminal_progress, bms)
    finally:
        terminal_progress("")
