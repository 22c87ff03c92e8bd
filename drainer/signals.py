"""SIGTERM/SIGINT: stop fetching; abort an uncommitted write at once; never interrupt a commit."""

from __future__ import annotations

import contextlib
import logging
import signal
from collections.abc import Iterator
from types import FrameType
from typing import Any

log = logging.getLogger(__name__)


class StopNow(BaseException):  # noqa: N818
    """Raised inside a blocked database write; BaseException so SQLAlchemy drops the connection."""


class StopFlag:
    """Set by a signal; while `interruptible()` is active, the signal also aborts the write."""

    def __init__(self) -> None:
        self.requested = False
        self.signal_name: str | None = None
        self._interruptible = False
        self._previous: dict[int, Any] = {}

    def __call__(self) -> bool:
        return self.requested

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        self.requested = True
        self.signal_name = signal.Signals(signum).name
        log.warning("stop requested", extra={"event": "signal", "signal": self.signal_name})
        if self._interruptible:
            self._interruptible = False
            raise StopNow(self.signal_name)

    def install(self) -> None:
        for signum in (signal.SIGTERM, signal.SIGINT):
            self._previous[signum] = signal.signal(signum, self._handle)

    def restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    @contextlib.contextmanager
    def interruptible(self) -> Iterator[None]:
        """Within this block a signal raises StopNow (the batch is rolled back and returned)."""
        if self.requested:
            raise StopNow(self.signal_name or "stop")
        self._interruptible = True
        try:
            yield
        finally:
            self._interruptible = False
