"""What is sounding (16 channels x 128 notes) and the panic message sequence. Pure: no ports.

A :class:`NoteTracker` is fed every message that goes out (a mido message, or its bytes
with :meth:`NoteTracker.update_bytes`) and always knows which notes a
synth is holding, who sent each (an owner tag, e.g. an answer id) and which channels were
used. :func:`panic_sequence` then gives the messages that silence everything: a note-off
for each sounding note, then :func:`silence_messages` (sustain off (CC64=0), all notes off
(CC123) and all sound off (CC120)) on each used channel.
"""

from __future__ import annotations

from typing import Hashable, Iterable, Iterator, Sequence

import mido

CHANNELS = 16
NOTES = 128
CC_SUSTAIN = 64
CC_ALL_NOTES_OFF = 123
CC_ALL_SOUND_OFF = 120


class NoteTracker:
    """Sounding notes with their owner tags, and used channels, updated with :meth:`update`
    per outgoing message.

    A note-on with velocity 0 counts as a note-off. Only the synth's view matters, so a
    repeated note-on of a sounding note keeps one entry (owned by the latest sender) and
    one note-off ends it.
    """

    __slots__ = ("_owners", "_used")

    def __init__(self) -> None:
        self._owners: dict[int, Hashable | None] = {}  # channel * NOTES + note -> owner
        self._used = 0  # bit c set: channel c (0-15) carried a channel message

    def update(self, message: mido.Message, owner: Hashable | None = None) -> None:
        self.update_bytes(message.bytes(), owner)

    def update_bytes(self, data: Sequence[int], owner: Hashable | None = None) -> None:
        """:meth:`update` for a message given as its bytes (status byte first), as the
        scheduler sends them: no message object is needed."""
        status = data[0]
        if status >= 0xF0:  # system messages have no channel
            return
        kind, channel = status & 0xF0, status & 0x0F
        if kind == 0x90 and data[2] > 0:
            self._owners[channel * NOTES + data[1]] = owner
        elif kind == 0x90 or kind == 0x80:
            self._owners.pop(channel * NOTES + data[1], None)
        self._used |= 1 << channel

    def is_sounding(self, channel: int, note: int) -> bool:
        return channel * NOTES + note in self._owners

    def sounding(self) -> list[tuple[int, int]]:
        """(channel, note) pairs that are sounding, in channel then pitch order."""
        return [divmod(i, NOTES) for i in sorted(self._owners)]

    def owned_by(self, owner: Hashable | None) -> list[tuple[int, int]]:
        """The sounding (channel, note) pairs whose last note-on came with ``owner``."""
        return [divmod(i, NOTES) for i, tag in sorted(self._owners.items()) if tag == owner]

    def used_channels(self) -> list[int]:
        """Channels (0-15) that carried any channel message since the last :meth:`clear`."""
        return [c for c in range(CHANNELS) if self._used >> c & 1]

    def clear(self) -> None:
        self._owners.clear()
        self._used = 0


def note_offs(pairs: Iterable[tuple[int, int]]) -> Iterator[mido.Message]:
    """A note-off (velocity 0) for each (channel, note)."""
    for channel, note in pairs:
        yield mido.Message("note_off", channel=channel, note=note, velocity=0)


def silence_messages(channels: Iterable[int]) -> Iterator[mido.Message]:
    """Sustain off, all notes off and all sound off on each channel (0-15)."""
    for channel in channels:
        for control in (CC_SUSTAIN, CC_ALL_NOTES_OFF, CC_ALL_SOUND_OFF):
            yield mido.Message("control_change", channel=channel, control=control, value=0)


def panic_sequence(tracker: NoteTracker) -> list[mido.Message]:
    """Note-offs for every sounding note, then :func:`silence_messages` per used channel."""
    return [*note_offs(tracker.sounding()), *silence_messages(tracker.used_channels())]
