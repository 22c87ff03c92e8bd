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

    def __init__(self, quiet: bool = False) -> None:
        self.requested = False
        self.signal_name: str | None = None
        self._interruptible = False
        self._quiet = quiet
        self._previous: dict[int, Any] = {}

    def __call__(self) -> bool:
        return self.requested

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        self.requested = True
        self.signal_name = signal.Signals(signum).name
        if self._quiet:
            return
        log.warning("stop requested", extra={"event": "signal", "signal": self.signal_name})
        if self._interruptible:
            self._interruptible = False
            raise StopNow(self.signal_name)

    def install(self) -> None:
        for signum in (signal.SIGTERM, signal.SIGINT):
            self._previous[signum] = signal.signal(signum, self._handle)

    def speak(self) -> None:
        """From now on a signal is logged (before this, logging may not be set up yet)."""
        self._quiet = False

    def quiet(self) -> None:
        """After the run's last record: signals are ignored from now on, so the process exits with
        the code the summary gives and no record follows it. Ignored, not handled: the
        interpreter's shutdown puts Python handlers back to SIG_DFL (CPython `_PySignal_Fini`),
        which a SIGTERM would then meet as 143, but leaves SIG_IGN in place."""
        self._quiet = True
        for signum in self._previous:
            signal.signal(signum, signal.SIG_IGN)

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


_current: StopFlag | None = None  # the flag installed for this process's drain, if any


def install_early() -> None:
    """The first thing a drain does: a SIGTERM while it starts (imports, parsing, connecting) is
    kept for the run, which then ends as `interrupted` (exit 75, with its summary) instead of
    dying with 143 and no record. Only the interpreter's own start-up, before this, is uncovered."""
    global _current
    uninstall()
    _current = StopFlag(quiet=True)
    _current.install()


def adopt() -> StopFlag:
    """The flag `install_early` put in place (a signal already received stays requested), or a
    newly installed one; either way logging signals from now on."""
    global _current
    if _current is None:
        _current = StopFlag()
        _current.install()
    _current.speak()
    return _current


def uninstall() -> None:
    """Give the signals back to the handlers before (for a caller that runs main() in-process)."""
    global _current
    if _current is not None:
        _current.restore()
        _current = None
