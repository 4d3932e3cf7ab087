"""The daemon's log to syslog (`pylon2influx -y`), and to stderr while syslog cannot be reached."""

from __future__ import annotations

import logging
import logging.handlers

SYSLOG = "/dev/log"


class Syslog(logging.handlers.SysLogHandler):
    """Syslog through its socket; a record it cannot send (syslogd stopped, no socket) goes to `fallback`, with one
    warning there, instead of logging's traceback on stderr."""

    def __init__(self, fallback: logging.Handler) -> None:
        super().__init__(SYSLOG, facility=logging.handlers.SysLogHandler.LOG_DAEMON)
        self.fallback = fallback
        self.failed = False
        self.setFormatter(logging.Formatter("pylon2influx[%(process)d]: %(message)s"))

    def handleError(self, record: logging.LogRecord) -> None:
        if not self.failed:
            self.failed = True
            self.fallback.handle(
                logging.makeLogRecord(
                    {
                        "levelno": logging.WARNING,
                        "levelname": "WARNING",
                        "msg": f"syslog is unreachable ({SYSLOG}); logging to stderr",
                    }
                )
            )
        if not getattr(record, "fatal", False):  # a fatal record is on stderr already
            self.fallback.handle(record)
