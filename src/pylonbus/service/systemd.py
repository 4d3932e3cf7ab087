"""The systemd notification protocol (sd_notify), without libsystemd: READY, WATCHDOG and STOPPING sent as
one datagram to $NOTIFY_SOCKET. Outside systemd it does nothing."""

from __future__ import annotations

import logging
import os
import socket

log = logging.getLogger(__name__)


def notify(state: str) -> None:
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    if address.startswith("@"):
        address = "\0" + address[1:]  # an abstract socket
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.sendto(state.encode(), address)
    except OSError as error:
        log.debug("cannot notify systemd at %s: %s", address, error)
