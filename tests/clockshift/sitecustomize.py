"""Python runs this at start-up in a process a test starts with this folder on PYTHONPATH: the system clock as the
process reads it (time.time, time.time_ns) moves by the seconds written in the file $PYLONBUS_TEST_CLOCK, which
the test rewrites while the process runs — what a Raspberry Pi without a real-time clock reads before NTP sets
it, and what a clock stepped back does. The monotonic clock is left alone, as the kernel leaves it.

(libfaketime would do this below Python, but its clock_nanosleep makes Python's time.sleep fail with EINVAL.)"""

import os
import time

_PATH = os.environ.get("PYLONBUS_TEST_CLOCK")

if _PATH:
    _time, _time_ns = time.time, time.time_ns
    _seen: list[object] = [None, 0.0]  # (inode, mtime) of the file, the offset read from it

    def _offset() -> float:
        try:
            status = os.stat(_PATH)
            version = (status.st_ino, status.st_mtime_ns)  # the test replaces the file: a new inode each time
            if version != _seen[0]:
                with open(_PATH) as file:
                    _seen[:] = [version, float(file.read())]
        except (OSError, ValueError):
            pass  # no file yet: the offset it had
        return float(_seen[1])  # type: ignore[arg-type]

    time.time = lambda: _time() + _offset()
    time.time_ns = lambda: _time_ns() + round(_offset() * 1e9)
