"""The console's framing: the echo and `@`, mixed line endings, the completion line, `$$`, the prompt and the
`Press [Enter]` pages. Text in, replies out; the caller owns the port (and answers a page with a CR)."""

from __future__ import annotations

import re
from dataclasses import dataclass

# Any `\w+>` ends an exchange: pylon>, pylon_debug> (after login), PYTES> (Pytes E-Box).
PROMPT = re.compile(r"^\s*>?(?:\w+>)+")  # `>pylon_debug>`: a prompt after a stray `>`
END = re.compile(r"\$\$[\r\n\s]*(\w+>)?")
LIVE_END = re.compile(r"\$\$[\r\n\s]*(\w+)>")
# The page prompt; the rest of its line may come later than its start, so a page is one when it is complete.
PAGE = re.compile(r"Press \[Enter\] to be continued(?:,other key to exit|[^\r\n]*[\r\n])")
LINE_BREAKS = re.compile(r"[\r\n]+")
ECHO_LINE = re.compile(r"[\r\n]@(?=[\r\n])")  # the `@` the console sends after echoing a command
COMPLETED = "Command completed successfully"
ECHO_MARK = "@"
CONSOLE_BAUD = 115200  # `Console Port rate : 115200` in every `info` seen
BYTES_ENCODING = "latin-1"  # a byte is a character: a cut or foreign byte never stops the reading


@dataclass(frozen=True, slots=True)
class Reply:
    """One exchange of a console session, framing taken off."""

    command: str
    """The command echoed ("" when the capture has none)."""
    lines: tuple[str, ...]
    """The lines of the answer, right-stripped: no echo, completion line, `$$`, prompt or page prompt."""
    prompt: str = ""
    """The prompt that ended it, without its `>` (`pylon`, `pylon_debug`, `PYTES`)."""
    completed: bool = False
    """Whether it ended with `Command completed successfully`."""
    pages: int = 0
    """How many `Press [Enter]` pages it stopped at."""


@dataclass(frozen=True, slots=True)
class Page:
    """The console stopped at `Press [Enter] to be continued`: send a CR for the next page."""


def lines_of(text: str) -> list[str]:
    """The non-blank lines of a text whatever its line endings (`\\r\\r\\n`, `\\r\\n\\r`, `\\n`), right-stripped."""
    return [line.rstrip() for line in LINE_BREAKS.split(text) if line.strip()]


def reply_of(text: str, command: str | None = None) -> Reply:
    """The reply in the text of one exchange, as captured: leading prompts, the echo of `command` (read from
    the text when not given), the answer, the completion line, `$$` and the prompt after it."""
    pages = len(PAGE.findall(text))
    text = PAGE.sub("\n", text)
    prompt = ""
    if (end := END.search(text)) is not None:
        prompt = (end.group(1) or "").removesuffix(">")
        text = text[: end.start()]
    lines = lines_of(text)
    echo, lines = _split_echo(lines, command)
    completed = bool(lines) and lines[-1].strip() == COMPLETED
    if completed:
        lines = lines[:-1]
    return Reply(echo, tuple(lines), prompt, completed, pages)


def _split_echo(lines: list[str], command: str | None) -> tuple[str, list[str]]:
    """The echoed command and the lines after it. The echo is the last line before a lone `@` (some consoles
    echo twice); without `@` it is a line after a prompt (Force H2) or the command the caller sent."""
    head = lines[:4]
    marks = [i for i, line in enumerate(head) if line.strip() == ECHO_MARK]
    if marks:
        at = marks[0]
        echoes = [_unprompted(line) for line in lines[:at] if _unprompted(line)]
        return (echoes[-1] if echoes else command or ""), lines[at + 1 :]
    while lines and PROMPT.match(lines[0]) and not _unprompted(lines[0]):
        lines = lines[1:]  # a bare prompt: the console was woken before the command
    if lines and PROMPT.match(lines[0]):
        return _unprompted(lines[0]), lines[1:]
    if lines and command is not None and lines[0].strip() == command:
        return command, lines[1:]
    return command or "", lines


def _unprompted(line: str) -> str:
    match = PROMPT.match(line)
    return (line[match.end() :] if match else line).strip()


def split_session(text: str) -> list[Reply]:
    """Every exchange of a captured session, in order. Each ends at its `$$`, or where the next command's echo
    starts (a listing left at its page prompt); what follows the last `$$` (a capture cut short, or a body
    captured without its framing) is one more reply unless it holds only prompts."""
    replies = []
    start = 0
    for end in [*END.finditer(text), None]:
        chunk = text[start : len(text) if end is None else end.end()]
        echoes = [_line_before(chunk, match.start()) for match in ECHO_LINE.finditer(chunk)][1:]
        for first, after in zip([0, *echoes], [*echoes, len(chunk)], strict=True):
            reply = reply_of(chunk[first:after])
            if end is not None or after < len(chunk) or reply.lines or reply.command:
                replies.append(reply)
        start = len(text) if end is None else end.end()
    return replies


def _line_before(text: str, end: int) -> int:
    """Where the line (the echo) that ends before the line breaks at `end` starts."""
    stop = len(text[:end].rstrip("\r\n"))
    return max(text.rfind("\r", 0, stop), text.rfind("\n", 0, stop)) + 1


class ConsoleReader:
    """Bytes of a live console in, events out: a `Page` when the console waits for Enter, a `Reply` once its
    `$$` and prompt have arrived. Chunks may split anywhere (a token, a line ending, the prompt).

    Attributes:
        command: The command sent, whose echo the reply starts with (None: read it from the reply)."""

    def __init__(self, command: str | None = None) -> None:
        self.command = command
        self._text = ""
        self._seen = 0  # where the search for the next page prompt starts

    def feed(self, data: bytes) -> None:
        """Take the bytes the port gave (any chunk: a token, a line ending or the prompt may be split)."""
        self._text += data.decode(BYTES_ENCODING)

    def clear(self, command: str | None = None) -> None:
        """Forget what arrived: a new request (`command`) is about to be sent."""
        self.command = command
        self._text = ""
        self._seen = 0

    @property
    def pending(self) -> str:
        """What arrived and is not yet a reply (for an error message about a reply cut short)."""
        return self._text

    def next_event(self) -> Reply | Page | None:
        """The next event of what was fed: a `Page` (answer it with a CR), a complete `Reply`, or None while
        more is to come."""
        end = LIVE_END.search(self._text)
        page = PAGE.search(self._text, self._seen)
        if page is not None and (end is None or page.start() < end.start()):
            self._seen = page.end()
            return Page()
        if end is None:
            return None
        text, self._text = self._text[: end.end()], self._text[end.end() :]
        self._seen = 0
        return reply_of(text, self.command)
