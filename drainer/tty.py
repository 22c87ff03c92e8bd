"""A progress bar for a multi-batch drain at a terminal (tqdm); nothing at all off a TTY."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any


def batch_bar(enabled: bool | None, multi_batch: bool) -> tuple[Callable[[Any], None] | None, Callable[[], None]]:
    """(on_batch callback or None, close). `enabled` None means: only when stderr is a TTY."""
    if enabled is None:
        enabled = multi_batch and sys.stderr.isatty()
    if not enabled:
        return None, lambda: None
    try:
        from tqdm import tqdm
    except ImportError:
        return None, lambda: None
    bar = tqdm(unit="msg", desc="draining", file=sys.stderr, dynamic_ncols=True)

    def on_batch(progress: Any) -> None:
        remaining = progress.queue_remaining or 0
        bar.total = progress.fetched + remaining  # the queue's depth is known from GetOk
        bar.update(progress.fetched - bar.n)
        bar.set_postfix(stored=progress.stored, rejected=progress.rejected, refresh=False)

    return on_batch, bar.close
