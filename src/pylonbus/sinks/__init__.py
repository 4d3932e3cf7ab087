"""Where line-protocol batches go. Every sink has `write(body) -> Outcome` and `close()`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Outcome:
    """What became of one write: `status` is the HTTP code, or 0 for a transport error or timeout."""

    status: int
    message: str = ""
    retry_after: float | None = None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def malformed(self) -> bool:
        """The server refuses the data itself: retrying it can never succeed."""
        return self.status == 400

    @property
    def too_large(self) -> bool:
        return self.status == 413

    @property
    def misconfigured(self) -> bool:
        """Wrong token, org, bucket or database: keep the data, fix the configuration."""
        return self.status in (401, 403, 404)


class Sink(Protocol):
    def write(self, body: bytes) -> Outcome: ...

    def close(self) -> None: ...


__all__ = ["Outcome", "Sink"]
