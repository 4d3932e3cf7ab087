"""Where readings go. A sink has `start()`, `publish(reading)`, `statistics()` and `close(seconds)`; each turns a typed
Reading into its own format (line protocol, MQTT, metrics) and none sees another's. A sink is imported by name
when it is used, so an optional dependency is only needed by who uses it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from ..errors import PylonbusError

if TYPE_CHECKING:
    import ssl

    from ..readings.reading import Reading


class Sink(Protocol):
    """Where the readings of a polling loop go: InfluxDB, MQTT and the HTTP metrics are sinks, and a sink of your
    own has these four methods and `spooling`."""

    spooling: bool
    """True when `publish` commits the reading to the spool before any of it leaves the process (the energy
    counters ride in that commit); False when the reading is shown at once (standard output, /metrics)."""

    def start(self) -> None:
        """Begin the work of its own (a thread that ships), if any; --once never calls it."""

    def publish(self, reading: Reading) -> None:
        """Take one cycle's reading; never blocks on a slow database or broker."""

    def statistics(self) -> str:
        """One line for the log (SIGHUP, exit)."""

    def close(self, seconds: float) -> int:
        """Stop, giving at most `seconds` to what is still to be sent; how much is left unsent."""


def address_host(host: str) -> str | bytes:
    """`host` as a socket address: an ASCII name or address as its bytes, which resolve as the text does, where
    text makes the socket module load the IDNA codec for every name (encodings.idna, stringprep, unicodedata:
    0.2 MB of a daemon's memory); a name beyond ASCII stays text, for that codec."""
    return host.encode() if host.isascii() else host


def tls_context(ca_file: str | None, verify: bool) -> ssl.SSLContext:
    """The system's CAs, or only those of `ca_file`; with `verify` off, no check at all (`-I 0`)."""
    import ssl

    try:
        context = ssl.create_default_context(cafile=ca_file)
    except (OSError, ssl.SSLError) as error:  # a file that is there (the configuration checked) but no PEM
        raise PylonbusError(f"--ca-file {ca_file}: not a PEM certificate ({error})") from None
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


__all__ = ["Sink", "address_host", "tls_context"]
