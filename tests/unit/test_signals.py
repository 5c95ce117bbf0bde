"""Stop signals become a call and a wake-up byte; uncaught thread errors are reported."""

import os
import signal
import socket
import threading

import pytest

from jam.service.signals import RELOAD_SIGNAL, STOP_SIGNALS, stop_on_signals, thread_errors_to


@pytest.mark.parametrize("sig", STOP_SIGNALS, ids=lambda s: signal.Signals(s).name)
def test_stop_signal_calls_stop_and_wakes_the_loop(sig):
    calls = []
    receiver, sender = socket.socketpair()
    sender.setblocking(False)
    before = signal.getsignal(sig)
    try:
        with stop_on_signals(calls.append, sender.fileno()):
            os.kill(os.getpid(), sig)
            receiver.settimeout(5)
            assert receiver.recv(1)  # the signal number, written by the C-level handler
        assert calls == [signal.Signals(sig).name]
        assert signal.getsignal(sig) is before  # handlers restored on exit
    finally:
        receiver.close()
        sender.close()


def test_sighup_is_not_a_stop_signal():
    assert RELOAD_SIGNAL not in STOP_SIGNALS


@pytest.mark.skipif(RELOAD_SIGNAL is None, reason="no SIGHUP on this system")
@pytest.mark.parametrize("reload", [True, False], ids=["reload", "no-reload-handler"])
def test_sighup_reloads_or_without_a_reload_handler_stops(reload):
    stops, reloads = [], []
    receiver, sender = socket.socketpair()
    sender.setblocking(False)
    before = signal.getsignal(RELOAD_SIGNAL)
    try:
        with stop_on_signals(stops.append, sender.fileno(),
                             reload=(lambda: reloads.append(1)) if reload else None):
            os.kill(os.getpid(), RELOAD_SIGNAL)
            receiver.settimeout(5)
            assert receiver.recv(1)  # the loop wakes for a reload too
        assert (stops, reloads) == (([], [1]) if reload else (["SIGHUP"], []))
        assert signal.getsignal(RELOAD_SIGNAL) is before
    finally:
        receiver.close()
        sender.close()


def test_uncaught_thread_error_is_reported_once_inside_only():
    errors = []
    before = threading.excepthook
    with thread_errors_to(errors.append):
        worker = threading.Thread(target=lambda: 1 / 0)
        worker.start()
        worker.join()
    assert len(errors) == 1 and isinstance(errors[0], ZeroDivisionError)
    assert threading.excepthook is before
