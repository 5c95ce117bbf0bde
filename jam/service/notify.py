"""systemd's notify protocol (sd_notify), by hand: datagrams on the AF_UNIX socket named
in ``$NOTIFY_SOCKET``.

``READY=1`` once the ports and the model are up, ``WATCHDOG=1`` while the engine is
healthy, ``STOPPING=1`` on shutdown, ``STATUS=...`` for ``systemctl status``. Outside
systemd (no ``$NOTIFY_SOCKET``) every call does nothing. A failed send is ignored: the
service manager's absence must never stop the music.
"""

from __future__ import annotations

import os
import socket


class Notifier:
    """One datagram socket to the service manager, opened once."""

    def __init__(self, address: str | None = None) -> None:
        address = os.environ.get("NOTIFY_SOCKET") if address is None else address
        self._address: str | None = None
        self._socket: socket.socket | None = None
        if address:
            # "@name" is an abstract socket: a leading NUL byte on Linux
            self._address = "\0" + address[1:] if address.startswith("@") else address
            self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)

    @property
    def enabled(self) -> bool:
        return self._socket is not None

    @staticmethod
    def watchdog_interval() -> float | None:
        """Seconds between ``WATCHDOG=1`` pings: half of ``$WATCHDOG_USEC`` when systemd
        set it for this process (``$WATCHDOG_PID`` absent or ours), else None."""
        usec = os.environ.get("WATCHDOG_USEC")
        pid = os.environ.get("WATCHDOG_PID")
        if not usec or (pid and pid != str(os.getpid())):
            return None
        try:
            return int(usec) / 2e6
        except ValueError:
            return None

    def send(self, *fields: str) -> None:
        if self._socket is None or self._address is None:
            return
        try:
            self._socket.sendto("\n".join(fields).encode(), self._address)
        except OSError:
            pass

    def ready(self, status: str = "") -> None:
        self.send("READY=1", *([f"STATUS={status}"] if status else []))

    def watchdog(self) -> None:
        self.send("WATCHDOG=1")

    def stopping(self) -> None:
        self.send("STOPPING=1")

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None
