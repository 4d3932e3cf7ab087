"""The RS232 console port, sans-I/O like `protocol/`: text of a console session in, typed results out.

`ConsoleReader` frames a live session (echo, `@`, `$$`, prompt, `Press [Enter]` pages); `split_session`
frames a captured one; `decode` reads a reply into its result (`pwr`, `pwr N`, `bat N`, `soh N`, `stat N`,
`info N`, `time`). Tables are read by their header, so firmware that adds, drops or moves columns reads.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..lazy import exports

if TYPE_CHECKING:
    from .commands import decode, read_session
    from .framing import ConsoleReader, Page, Reply, split_session

__all__ = ["ConsoleReader", "Page", "Reply", "decode", "read_session", "split_session"]
__getattr__ = exports(
    __name__,
    {"decode": ".commands", "read_session": ".commands"}
    | dict.fromkeys(("ConsoleReader", "Page", "Reply", "split_session"), ".framing"),
)
