#!/usr/bin/env python3
"""Write a folder of ordinary multi-part MIDI files from music21's corpus, to try the
"train your own" recipes on (docs/your-own-model.md) without a MIDI collection of your own.

    python tools/example_midi.py -o ~/jam/example-midi            # the 40 pieces below

The pieces are public-domain compositions whose scores ship with music21 (none of them is
in the data of the shipped model): string-quartet movements (Haydn, Mozart), madrigals
(Monteverdi), songs (Handel, Verdi, Liliuokalani, Johnson, Schumann; as voice and piano,
choir or piano arrangement) and piano pieces (Joplin, Mozart, Chopin, Clara Schumann). Each
is written by music21 as a type-1 file with one named track per part; to look like files
found in the wild, every fifth file is then turned into a type-0 file (one track, a channel
per part, no part names) and every eighth gets a drum track on channel 10 and a tempo
change halfway. ``SOURCES.txt`` lists
where each file came from. Needs the ``train`` extra (music21).
"""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

import mido

from jam.errors import JamError
from toolcli import Parser, nonempty_path

PIECES = (
    "haydn/opus1no1/movement1.mxl", "haydn/opus1no1/movement2.mxl", "haydn/opus1no1/movement3.mxl",
    "haydn/opus1no1/movement4.mxl", "haydn/opus1no1/movement5.mxl", "haydn/opus74no1/movement1.mxl",
    "haydn/opus74no1/movement2.mxl", "haydn/opus74no1/movement3.mxl", "haydn/opus74no1/movement4.mxl",
    "mozart/k80/movement1.mxl", "mozart/k80/movement2.mxl", "mozart/k80/movement3.mxl",
    "mozart/k80/movement4.mxl", "mozart/k155/movement1.mxl", "mozart/k155/movement2.mxl",
    "mozart/k155/movement3.mxl", "mozart/k156/movement1.mxl", "mozart/k156/movement2.mxl",
    "mozart/k156/movement3.mxl", "mozart/k156/movement4.mxl",
    "monteverdi/madrigal.3.1.mxl", "monteverdi/madrigal.3.2.mxl", "monteverdi/madrigal.3.3.mxl",
    "monteverdi/madrigal.3.4.mxl", "monteverdi/madrigal.3.5.mxl", "monteverdi/madrigal.3.6.mxl",
    "monteverdi/madrigal.3.7.mxl", "monteverdi/madrigal.3.8.mxl",
    "handel/rinaldo/Lascia_chio_pianga.mxl", "verdi/laDonnaEMobile.mxl",
    "liliuokalani/aloha_oe.mxl", "johnson_j_r/lift_every_voice.mxl", "schumann_robert/opus48no2.mxl",
    "joplin/maple_leaf_rag.mxl", "mozart/k545/movement1_exposition.mxl", "chopin/mazurka06-2.krn",
    "schumann_clara/polonaise_op1n1.mxl", "schumann_clara/polonaise_op1n2.mxl",
    "schumann_clara/polonaise_op1n3.mxl", "schumann_clara/polonaise_op1n4.mxl",
)
DRUM_PATTERN = ((0, 36), (1, 42), (2, 38), (3, 42))  # (beat, GM note): kick, hat, snare, hat


def file_name(piece: str) -> str:
    return piece.rsplit(".", 1)[0].replace("/", "-") + ".mid"


def to_type0(midi: mido.MidiFile) -> mido.MidiFile:
    """One track; each note track on a channel of its own (as type-0 files are); no names."""
    tracks, channel = [], 0
    for track in midi.tracks:
        if not any(m.type == "note_on" for m in track):
            tracks.append(track)
            continue
        if channel == 9:
            channel += 1
        moved = mido.MidiTrack()
        for msg in track:
            if msg.type == "track_name":
                msg = mido.MetaMessage("marker", text="", time=msg.time)
            elif hasattr(msg, "channel"):
                msg = msg.copy(channel=channel)
            moved.append(msg)
        tracks.append(moved)
        channel = min(channel + 1, 15)
    out = mido.MidiFile(type=0, ticks_per_beat=midi.ticks_per_beat)
    out.tracks.append(mido.merge_tracks(tracks))
    return out


def add_drums_and_tempo_change(midi: mido.MidiFile) -> None:
    """A drum track (channel 10, one bar of 4/4 over and over) and a tempo change halfway."""
    length = max(sum(m.time for m in track) for track in midi.tracks)
    tpb = midi.ticks_per_beat
    events = []
    for bar_start in range(0, length, 4 * tpb):
        for beat, note in DRUM_PATTERN:
            tick = bar_start + beat * tpb
            events += [(tick, 1, note), (tick + tpb // 4, 0, note)]
    drums = mido.MidiTrack([mido.MetaMessage("track_name", name="Drums", time=0)])
    now = 0
    for tick, on, note in sorted(events):
        kind = "note_on" if on else "note_off"
        drums.append(mido.Message(kind, channel=9, note=note, velocity=90 if on else 0, time=tick - now))
        now = tick
    midi.tracks.append(drums)
    conductor = midi.tracks[0]
    absolute, now = [], 0
    for msg in conductor:
        now += msg.time
        absolute.append((now, msg))
    absolute.append((length // 2, mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(90))))
    absolute.sort(key=lambda item: item[0])
    rebuilt, now = mido.MidiTrack(), 0
    for tick, msg in absolute:
        rebuilt.append(msg.copy(time=tick - now))
        now = tick
    midi.tracks[0] = rebuilt


def strip_repeats(score) -> None:
    """Remove repeat barlines and repeat expressions (D.C., segno, ...) from a score."""
    from music21 import bar, repeat

    for element in list(score.recurse().getElementsByClass((bar.Repeat, repeat.RepeatExpression))):
        site = element.activeSite
        if isinstance(element, bar.Repeat):
            replacement = bar.Barline("regular")
            if site.leftBarline is element:
                site.leftBarline = None
            elif site.rightBarline is element:
                site.rightBarline = replacement
        else:
            site.remove(element)


def write_folder(out: Path, count: int, force: bool) -> list[str]:
    from music21 import corpus

    warnings.filterwarnings("ignore")
    out.mkdir(parents=True, exist_ok=True)
    lines = []
    for i, piece in enumerate(PIECES[:count]):
        target = out / file_name(piece)
        changes: list[str] = []
        if target.exists() and not force:
            raise JamError(f"{target} exists; pass --force to write the folder again")
        score = corpus.parse(piece)
        try:
            score.write("midi", fp=str(target))
        except Exception:  # music21 cannot expand some repeats: write them once, as printed
            strip_repeats(score)
            score.write("midi", fp=str(target))
            changes.append("repeats written once (music21 could not expand them)")
        midi = mido.MidiFile(target)
        if i % 8 == 3:
            add_drums_and_tempo_change(midi)
            changes.append("drum track on channel 10 and a tempo change added")
        if i % 5 == 4:
            midi = to_type0(midi)
            changes.append("type 0, a channel per part, no names")
        midi.save(target)
        lines.append(f"{target.name}: music21 corpus {piece} (public-domain composition)"
                     + (f"; {'; '.join(changes)}" if changes else ""))
        print(lines[-1], flush=True)
    (out / "SOURCES.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = Parser(prog="example_midi.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("-o", "--output", type=nonempty_path, required=True, metavar="DIR",
                        help="folder to write the MIDI files into (created)")
    parser.add_argument("--count", type=int, default=len(PIECES), help="write only the first N pieces")
    parser.add_argument("--force", action="store_true", help="replace files written before")
    args = parser.parse_args(argv)
    started = time.monotonic()
    try:
        lines = write_folder(args.output, max(1, args.count), args.force)
    except JamError as err:
        print(f"example_midi: {err}", file=sys.stderr)
        return 2
    print(f"wrote {len(lines)} MIDI files to {args.output} in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
