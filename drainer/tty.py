"""A progress bar for a multi-batch drain at a terminal (tqdm), sharing stderr with the log records;
and the question a destructive command asks at a terminal. Nothing at all off a TTY."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Callable, Iterator
from typing import Any, TextIO


def is_terminal() -> bool:
    """True when a person is at the keyboard: stdin and stderr are both a terminal."""
    return sys.stdin.isatty() and sys.stderr.isatty()


def confirm(question: str) -> bool:
    """Ask on stderr, read one line from stdin; True only for y or yes (an empty line is no)."""
    sys.stderr.write(f"{question} [y/N] ")
    sys.stderr.flush()
    answer = sys.stdin.readline()
    return answer.strip().lower() in ("y", "yes")


class _AboveTheBar:
    """The stream log handlers write to while a bar is shown: each record (one write of a whole
    line, as logging.StreamHandler does) clears the bar, is written, and the bar is drawn again
    below it, so no line is ever cut. tqdm's own `logging_redirect_tqdm` would do the same but
    swaps our handler for its own and drops the handler's filters (run id, secret scrubbing)."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        from tqdm import tqdm

        with tqdm.external_write_mode(file=self.stream):
            self.stream.write(text)
            self.stream.flush()
        return len(text)

    def flush(self) -> None:
        self.stream.flush()


@contextlib.contextmanager
def _logs_above(stream: TextIO) -> Iterator[None]:
    handlers = [
        h
        for h in logging.getLogger().handlers
        if isinstance(h, logging.StreamHandler) and getattr(h, "stream", None) is stream
    ]
    wrapper = _AboveTheBar(stream)
    for handler in handlers:
        handler.setStream(wrapper)  # type: ignore[arg-type]
    try:
        yield
    finally:
        for handler in handlers:
            handler.setStream(stream)


def _show(bar: Any, progress: Any) -> None:
    bar.total = progress.fetched + (progress.queue_remaining or 0)  # the queue's depth is known from GetOk
    # Integers as such: tqdm's own postfix formatting turns 20000 into "2e+4".
    counts = f"stored={progress.stored} duplicates={progress.duplicates} rejected={progress.rejected}"
    bar.set_postfix_str(counts, refresh=False)
    bar.update(progress.fetched - bar.n)  # redraws (at most every 0.1 s)


@contextlib.contextmanager
def batch_bar(progress: Any, enabled: bool | None, multi_batch: bool) -> Iterator[Callable[[Any], None] | None]:
    """Yield the on_batch callback that moves the bar (None when no bar is shown); log records go
    above the bar meanwhile. On leaving, the bar is drawn one last time from `progress` (a
    drain.Progress), so it ends on the run's true totals. `enabled` None: only for a multi-batch
    drain with stderr at a terminal."""
    if enabled is None:
        enabled = multi_batch and sys.stderr.isatty()
    try:
        if not enabled:
            raise ImportError
        from tqdm import tqdm
    except ImportError:  # no bar wanted, or the progress extra is not installed
        yield None
        return
    stream = sys.stderr
    bar = tqdm(unit="msg", desc="draining", file=stream, dynamic_ncols=True)
    try:
        with _logs_above(stream):
            try:
                yield lambda p: _show(bar, p)
            finally:
                _show(bar, progress)
                bar.refresh()
    finally:
        bar.close()
