"""Bounded retry policies (tenacity): exponential backoff with jitter, always stopped by a budget."""

from __future__ import annotations

import logging
from collections.abc import Callable

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_before_delay,
    wait_exponential,
    wait_random,
)

log = logging.getLogger(__name__)


def bounded(
    what: str,
    budget_s: float,
    transient: Callable[[BaseException], bool],
    between: Callable[[], None] | None = None,
    describe: Callable[[BaseException], str] = str,
) -> Retrying:
    """Retry `transient` errors until `budget_s` has passed; log every retry; then re-raise."""

    def before_sleep(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        log.warning(
            "%s failed, retrying in %.1f s",
            what,
            state.upcoming_sleep,
            extra={
                "event": "retry",
                "operation": what,
                "attempt": state.attempt_number,
                "cause": describe(exc) if exc else None,
                "sleep_s": round(state.upcoming_sleep, 3),
            },
        )
        if between is not None:
            between()

    def retryable(exc: BaseException) -> bool:
        return isinstance(exc, Exception) and transient(exc)

    return Retrying(
        # Never start an attempt (or a sleep) that would end past the budget: callers size leases
        # and deadlines on it.
        stop=stop_before_delay(budget_s),
        wait=wait_exponential(multiplier=0.2, max=5.0) + wait_random(0, 0.5),  # backoff with jitter
        retry=retry_if_exception(retryable),
        before_sleep=before_sleep,
        reraise=True,
    )
