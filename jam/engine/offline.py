"""The live engine (:class:`~jam.engine.callresponse.CallResponse`) on virtual time, for a
call given as notes (``jam respond``, evaluation, listening tests, warm-up).

The call's notes are played into the engine at their times, all of it as one call: the
call ends ``listen_silence`` beats after the end of its last note. The engine then answers
as live, but with no compute lead (virtual time costs nothing): the answer starts on the
first beat (or bar) at or after the end of that silence. The driver wakes the engine at
the times it asks for; virtual time never runs late, so with a seed the result is the same
every time. ``follow=True`` fits the pulse to the call's onsets as live and re-quantizes
the call with it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from jam.engine.callresponse import AnswerNote, CallResponse, EngineSettings
from jam.engine.clock import Clock, FixedTempo, FollowTempo, TempoSource
from jam.generators.base import Generator
from jam.music.tokens import TICKS_PER_BEAT, Note


@dataclass
class Response:
    call: list[Note]  # the call's notes on the engine's grid (all voices)
    answer: list[Note]
    bpm: float
    key: str | None  # the key the answer was masked to


def respond(notes: list[Note], bpm: float, generator: Generator, settings: EngineSettings,
            follow: bool = False, rng: np.random.Generator | None = None) -> Response:
    """Answer the call ``notes`` (grid ticks; tick 0 is a downbeat) played at ``bpm``
    (with ``follow``: the first guess of the tempo fit)."""
    tick_seconds = 60.0 / bpm / TICKS_PER_BEAT
    tempo: TempoSource
    if follow:
        clock, tempo = Clock(bpm, settings.meter), FollowTempo(bpm)
    else:  # the file's grid is the pulse: tick 0 of the file is a downbeat
        clock, tempo = Clock(bpm, settings.meter, 0.0), FixedTempo(bpm)
    # the whole call is one call: no silence or length inside it ends it
    engine = CallResponse(generator, clock, tempo,
                          replace(settings, listen_silence=float("inf"), max_call=None,
                                  barge_in="ignore"), rng, lead=0.0, margin=0.0)
    events = sorted([(n.start, 1, n.pitch, n.velocity) for n in notes]
                    + [(n.end, 0, n.pitch, 0) for n in notes])
    for tick, is_on, pitch, velocity in events:
        if is_on:
            engine.note_on(pitch, velocity, tick * tick_seconds)
        else:
            engine.note_off(pitch, tick * tick_seconds)
    last_end = max(n.end for n in notes)
    now = (last_end + settings.listen_silence * TICKS_PER_BEAT) * tick_seconds
    answer: list[AnswerNote] = [n for n in engine.end_call(now, "end of call")
                                if isinstance(n, AnswerNote)]
    while engine.answer is not None:
        wake = engine.wakeup()
        assert wake is not None  # an answer always has a next wake-up
        now = max(now, wake)
        answer += [n for n in engine.poll(now) if isinstance(n, AnswerNote)]
    call = [n._replace(start=clock.tick(n.start * tick_seconds),
                       duration=max(1, clock.tick(n.end * tick_seconds)
                                    - clock.tick(n.start * tick_seconds)))
            for n in notes]
    key = engine.last_key
    return Response(call, [Note(n.pitch, n.start, n.end - n.start, n.velocity) for n in answer],
                    clock.bpm, key.name if key else None)
