"""Reliability checks on top of the JACK rig (``jackrig``): what a synth was left holding,
how much memory a process holds, and a raw MIDI output for bytes mido would refuse.

- :func:`check_notes` reads what a test synth (:class:`jackrig.Synth`) received, in order,
  and tracks every note per channel: a **stuck** note is one whose note-on got neither a
  later note-off (or note-on with velocity 0) nor an all-notes-off / all-sound-off (CC123 /
  CC120) on its channel, so a synth would still be sounding it; a **lost note-off** is a
  note that never got its own note-off (it is stuck, or only a panic's CC123/CC120 ended
  it). jam's own shutdown sends a note-off for every note it sounded before its CC123, so
  after a clean stop both lists are empty; after a ``kill -9`` and ``jam panic`` the notes
  that were sounding are lost note-offs but not stuck. A sustain pedal still down at the
  end is reported too (``pedal_down``): notes released under it would still sound.
- :func:`private_memory` reads ``RssAnon`` and ``RssFile`` of a process from
  ``/proc/PID/status`` (kB).
- :func:`raw_output` opens a python-rtmidi JACK output connected to the one input port of a
  JACK client, and returns it once the connection carries events (a probe is sent until a
  condition says it arrived: a loaded JACK server can lose what is sent in the first
  cycles after a connection).

Imported as ``stagerig`` by the tests (pytest puts ``tools/`` on ``sys.path``) and by
``tools/soak.py`` and ``tools/flood.py`` (a tool's own folder is on ``sys.path``).
"""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

import mido

from jackrig import wait_for

ALL_NOTES_OFF, ALL_SOUND_OFF, SUSTAIN = 123, 120, 64


@dataclass(frozen=True)
class Sounding:
    """A note a synth was sounding: its channel (0-15), pitch and note-on arrival time."""

    channel: int
    note: int
    on: float


@dataclass
class NoteReport:
    """What :func:`check_notes` found (see the module's description)."""

    note_ons: int = 0  # note-ons with velocity > 0
    note_offs: int = 0  # note-offs (or velocity-0 note-ons) that ended a sounding note
    stuck: list[Sounding] = field(default_factory=list)
    lost_note_offs: list[Sounding] = field(default_factory=list)
    stray_offs: int = 0  # note-offs of a note that was not sounding (harmless)
    retriggers: int = 0  # note-ons of a note already sounding on its channel
    pedal_down: list[int] = field(default_factory=list)  # channels, sustain still down

    @property
    def clean(self) -> bool:
        return not self.stuck and not self.lost_note_offs and not self.pedal_down

    def summary(self) -> dict:
        """A JSON-able digest (the first few notes of each list)."""
        def few(notes: list[Sounding]) -> list[list]:
            return [[n.channel + 1, n.note, round(n.on, 3)] for n in notes[:8]]

        return {"note_ons": self.note_ons, "note_offs": self.note_offs,
                "stuck": len(self.stuck), "lost_note_offs": len(self.lost_note_offs),
                "stray_offs": self.stray_offs, "retriggers": self.retriggers,
                "pedal_down": [c + 1 for c in self.pedal_down],
                "stuck_notes (channel 1-16, note, on)": few(self.stuck),
                "lost_note_offs (channel 1-16, note, on)": few(self.lost_note_offs)}


def check_notes(received: Iterable[tuple[float, mido.Message]],
                until: float | None = None) -> NoteReport:
    """Track every note in ``received`` ((arrival time, message), in arrival order), up to
    ``until`` (a time; None: all of it)."""
    report = NoteReport()
    sounding: dict[tuple[int, int], float] = {}  # (channel, note) -> note-on time
    ended_by_panic: list[Sounding] = []
    pedal: set[int] = set()
    for when, message in received:
        if until is not None and when > until:
            break
        kind = message.type
        if kind == "note_on" and message.velocity > 0:
            report.note_ons += 1
            key = (message.channel, message.note)
            if key in sounding:
                report.retriggers += 1
            else:
                sounding[key] = when
        elif kind in ("note_on", "note_off"):
            if sounding.pop((message.channel, message.note), None) is None:
                report.stray_offs += 1
            else:
                report.note_offs += 1
        elif kind == "control_change":
            if message.control in (ALL_NOTES_OFF, ALL_SOUND_OFF):
                for key in [k for k in sounding if k[0] == message.channel]:
                    ended_by_panic.append(Sounding(*key, sounding.pop(key)))
                if message.control == ALL_SOUND_OFF:
                    pedal.discard(message.channel)
            elif message.control == SUSTAIN:
                (pedal.add if message.value >= 64 else pedal.discard)(message.channel)
    report.stuck = sorted((Sounding(c, n, t) for (c, n), t in sounding.items()),
                          key=lambda s: s.on)
    report.lost_note_offs = sorted(ended_by_panic + report.stuck, key=lambda s: s.on)
    report.pedal_down = sorted(pedal)
    return report


def all_notes_ended(synth, quiet: float = 1.0, timeout: float = 10.0) -> bool:
    """Wait until ``synth`` received something, no note is sounding there and nothing
    came for ``quiet`` seconds (a long last note ends in time; a stuck one never does)."""
    def ended() -> bool:
        got = synth.received
        return bool(got) and not check_notes(got).stuck \
            and time.monotonic() - got[-1][0] > quiet
    return wait_for(ended, timeout, interval=0.02)


def private_memory(pid: int) -> dict[str, int]:
    """``RssAnon``, ``RssFile`` and their sum (``private_kb``) of process ``pid``, in kB,
    from ``/proc/PID/status``."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("RssAnon", "RssFile", "RssShmem", "VmHWM"):
            fields[name] = int(value.split()[0])
    return {"rss_anon_kb": fields["RssAnon"], "rss_file_kb": fields["RssFile"],
            "private_kb": fields["RssAnon"] + fields["RssFile"],
            "peak_rss_kb": fields.get("VmHWM", 0)}


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` so far (s)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    """The process ids of process ``pid``'s children (jam's JACK input helper)."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text() if (task / "children").exists() else ""
        found += [int(child) for child in text.split()]
    return found


def raw_output(client: str, probe: Sequence[int], heard: Callable[[], bool],
               name: str = "raw", timeout: float = 10.0):
    """A python-rtmidi JACK ``MidiOut`` connected to the one input port of JACK client
    ``client``, returned once ``heard()`` says that ``probe`` (sent every 20 ms until
    then) arrived. The caller closes it (``close_port()``, ``delete()``)."""
    import rtmidi

    port = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name=name)
    try:
        names = port.get_ports()
        inputs = [i for i, n in enumerate(names) if n.startswith(f"{client}:")]
        if len(inputs) != 1:
            raise RuntimeError(f"JACK client {client!r} has {len(inputs)} input ports: {names}")
        port.open_port(inputs[0])
        deadline = time.monotonic() + timeout
        while not heard():
            if time.monotonic() > deadline:
                raise RuntimeError(f"nothing sent to {client} arrived in {timeout} s")
            port.send_message(list(probe))
            time.sleep(0.02)
    except BaseException:
        port.delete()
        raise
    return port


def jack_clients(env: dict[str, str]) -> list[str] | None:
    """The JACK ports listed by ``jack_lsp`` (None: the server does not answer)."""
    listing = subprocess.run(["jack_lsp"], env=env, capture_output=True, text=True,
                             stdin=subprocess.DEVNULL)
    return listing.stdout.splitlines() if listing.returncode == 0 else None

