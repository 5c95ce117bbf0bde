"""Turning SIGINT/SIGTERM and errors in other threads into a clean stop, and SIGHUP into a
reload of the configuration (the daemon convention: ``systemctl reload jam``).

The handlers only call the given function (which must set a flag, take no locks and
return at once): the run loop notices the flag and does the work on the main thread.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Callable, Iterator

STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM")
                     if hasattr(signal, name))
RELOAD_SIGNAL = getattr(signal, "SIGHUP", None)  # None on Windows


@contextlib.contextmanager
def stop_on_signals(stop: Callable[[str], None], wakeup_fd: int | None = None,
                    reload: Callable[[], None] | None = None) -> Iterator[None]:
    """While inside, a stop signal calls ``stop(signal name)`` instead of killing us, and
    SIGHUP calls ``reload()`` (without ``reload``, SIGHUP stops too: its default action
    would kill us without the cleanup). With ``wakeup_fd`` (a non-blocking socket or pipe),
    the signal also writes a byte to it, so a main loop waiting in ``select`` wakes at
    once. Main thread only."""

    def handler(signum: int, frame: object) -> None:
        stop(signal.Signals(signum).name)

    def reload_handler(signum: int, frame: object) -> None:
        assert reload is not None
        reload()

    handlers = {sig: handler for sig in STOP_SIGNALS}
    if RELOAD_SIGNAL is not None:
        handlers[RELOAD_SIGNAL] = handler if reload is None else reload_handler
    previous = {sig: signal.signal(sig, action) for sig, action in handlers.items()}
    previous_fd = signal.set_wakeup_fd(wakeup_fd) if wakeup_fd is not None else None
    try:
        yield
    finally:
        if previous_fd is not None:
            signal.set_wakeup_fd(previous_fd)
        for sig, old in previous.items():
            signal.signal(sig, old)


@contextlib.contextmanager
def thread_errors_to(fail: Callable[[BaseException], None]) -> Iterator[None]:
    """While inside, an uncaught exception in any thread calls ``fail(exception)``."""

    def hook(args: threading.ExceptHookArgs) -> None:
        if args.exc_value is not None:
            fail(args.exc_value)

    previous = threading.excepthook
    threading.excepthook = hook
    try:
        yield
    finally:
        threading.excepthook = previous
