"""The process that owns a JACK input port for jam (see :class:`jam.midi.ports.PipedInput`).

Run by jam as ``python -I -S jack_input.py SITE CLIENT PORT VIRTUAL``: ``SITE`` is the
folder python-rtmidi is installed in (nothing else is imported, so the process starts in
tens of milliseconds), ``VIRTUAL`` is 1 for a virtual port named ``PORT`` under client
``CLIENT``, 0 to connect to the existing port ``PORT``.

python-rtmidi's callback runs in JACK's process thread; in this process no other thread
runs Python (the main thread waits in a read of stdin), so the callback never waits for
the GIL and the client never misses its cycle because of Python elsewhere, and jam needs
no thread that polls. Each event goes to stdout at once as one record::

    kind (1 byte: b"e" event, b"d" events dropped), time.monotonic() (double),
    length (uint32), the event's bytes  -- little-endian, struct "<cdI"

A pipe that is full (jam not reading) drops the event rather than block JACK's thread
(counted in a ``d`` record once the pipe takes records again). ``R`` on stdout says the
port is open; a failure to open it is one line on stderr and exit status 2. The process
ignores SIGINT, SIGTERM and SIGHUP (a terminal's Ctrl-C or a service manager reach the
whole process group; jam decides when its input closes) and ends when its stdin closes:
when jam closes the port, and when jam ends, however it ends.
"""

import os
import signal
import struct
import sys
import time

RECORD = struct.Struct("<cdI")


def main() -> int:
    site, client, port, virtual = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == "1"
    for stop in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(stop, signal.SIG_IGN)
    sys.path.insert(0, site)
    import rtmidi

    out = sys.stdout.fileno()
    try:
        rt = rtmidi.MidiIn(rtmidi.API_UNIX_JACK, name=client)
        rt.ignore_types(sysex=False, timing=False, active_sense=True)
        if virtual:
            rt.open_virtual_port(port)
        else:
            rt.open_port(rt.get_ports().index(port))
    except (ValueError, rtmidi.RtMidiError) as err:
        print(f"cannot open input {port!r}: {err}", file=sys.stderr)
        return 2
    os.set_blocking(out, False)
    write, pack, monotonic = os.write, RECORD.pack, time.monotonic
    lost = [0]

    def on_event(event, _data) -> None:
        data = bytes(event[0])
        try:
            if lost[0]:
                write(out, pack(b"d", monotonic(), lost[0]))
                lost[0] = 0
            write(out, pack(b"e", monotonic(), len(data)) + data)
        except BlockingIOError:  # jam is not reading: drop, never block JACK's thread
            lost[0] += 1
        except OSError:  # jam is gone; stdin ends next
            pass

    write(out, b"R")  # the pipe is empty: this goes in whole
    rt.set_callback(on_event)
    while os.read(0, 4096):  # until jam closes our stdin (or ends)
        pass
    rt.cancel_callback()
    rt.close_port()
    rt.delete()
    return 0


if __name__ == "__main__":
    sys.exit(main())
