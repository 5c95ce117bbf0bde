"""Live call and response: the engine (:class:`~jam.engine.callresponse.CallResponse`)
driven by MIDI input and monotonic time, its answers handed to the scheduler thread.

On stage the mode also takes controls from the instrument (:mod:`jam.engine.controls`:
knobs, pads, footswitches, Program Change for presets), changes options through one method
(:meth:`CallMode.apply`: controls, presets and :meth:`CallMode.reload` use it), tells the
player its state on a controller (``state_cc``), clicks the beat (``metronome``), sends
everything ``output_latency`` early, and does not take the echo of its own notes (a synth's
MIDI thru looped back) for the player.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from dataclasses import replace
from typing import Any, Mapping

import mido
import numpy as np

from jam.config import PRESET_KEYS, Config, check_value, default_config
from jam.engine.assembly import make_generator, make_tempo, warm_up
from jam.engine.callresponse import AnswerNote, CallResponse, EngineSettings, Stop
from jam.engine.clock import Clock, FixedTempo, FollowTempo, Pulse
from jam.engine.controls import PRESET, Action, ControlMap, EchoFilter, Tapped, TapTempo
from jam.engine.runner import Mode
from jam.engine.scheduler import Scheduler
from jam.engine.stage import Stage
from jam.errors import JamError
from jam.generators.base import Generator
from jam.generators.blend import BlendGenerator
from jam.midi.controls import CONTINUOUS
from jam.midi.tracker import CC_SUSTAIN
from jam.music.meter import Meter
from jam.music.sampling import SamplerSettings
from jam.profiles import attach_profile, save_profile

log = logging.getLogger(__name__)

SUBMODES = ("call", "thru", "mute")  # what the ``mode`` control cycles through
STATES = {"idle": 0, "listening": 32, "answering": 127}  # values of the state CC
CLICKS = (76, 77)  # GM percussion: hi wood block on the downbeat, low wood block otherwise
CLICK_VELOCITIES = (110, 80)
CLICK_LENGTH = 0.03  # s from a click's note-on to its note-off
CLICK_AHEAD = 0.25  # s: clicks are handed to the scheduler this long before they are due
CLICK_MARGIN = 0.002  # s: the first click is at least this far ahead (never sent late)
METRONOME, THRU = "metronome", "thru"  # scheduler tags of the clicks and forwarded input
# options the engine's settings take at once (they shape the next answer)
_SETTINGS = ("listen_silence", "end_call_cc", "max_call", "align", "answer_bars",
             "max_answer_bars", "key", "low", "high", "barge_in", "lookahead")
_BETWEEN_PHRASES = ("bpm", "tempo", "meter")  # they move the clock: applied when idle
# every option that :meth:`CallMode.apply` changes while jam runs
LIVE_KEYS = (*PRESET_KEYS, "end_call_cc", "max_call", "barge_in", "lookahead", "seed",
             "output_latency", "echo_window", "state_cc", "metronome", "metronome_channel",
             "controls", "presets", "style")


def _shown(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (dict, list)):
        return f"({len(value)} {'entry' if len(value) == 1 else 'entries'})"
    return str(value)


def _one_line(error: BaseException) -> str:
    text = str(error) if isinstance(error, JamError) else f"{type(error).__name__}: {error}"
    return " ".join(text.split())


class CallMode(Mode):
    """Live call and response for the run loop (:mod:`jam.engine.runner`).

    The MIDI input thread only appends to a queue; the main thread (the engine thread)
    drains it in :meth:`poll`, runs :class:`CallResponse` at the ``now`` it is given, and
    hands answer notes to the scheduler thread as (deadline, message) pairs tagged with the
    answer's id, so a barge-in is one ``cancel(tag)``. Answers go out on ``--channel``,
    else on the channel the player used last.

    ``config`` gives the stage options (controls, presets, feedback, latency, echoes; the
    shipped defaults without it). Everything runs on the engine thread, in :meth:`poll`,
    except the loading of a preset's model (a thread of its own, swapped in between
    phrases) and :meth:`on_message` (the input thread: it only queues).
    """

    name = "call"
    midi_clock = True  # takes --clock-in PORT and --clock-out (the run loop opens them)

    def __init__(self, engine: CallResponse, channel: int | None = None,
                 config: Config | None = None, stage: Stage | None = None) -> None:
        self.engine = engine
        self.channel = channel  # 0-15, or None: follow the player
        self._player_channel = 0
        self._inbox: deque[tuple[mido.Message, float]] = deque()
        self.stage = stage  # MIDI clock in and out, recording (jam.engine.stage)
        options = (config or default_config()).as_dict()
        if config is None:  # the options the engine was built with, and --channel
            options.update(_engine_options(engine), channel=None if channel is None
                           else channel + 1)
        self.options: dict[str, Any] = options  # the options in force (or being applied)
        self._base = dict(options)  # the config as started or last reloaded
        self.controls = ControlMap(options["controls"], options["end_call_cc"])
        self.presets: list[dict[str, Any]] = list(options["presets"])
        self.preset: int | None = None  # the preset selected last
        self.submode = "call"
        self.echo = EchoFilter(options["echo_window"] / 1000)
        engine.latency = options["output_latency"] / 1000
        self.taps = TapTempo()
        self._tapped: Tapped | None = None  # a tapped pulse waiting for a phrase boundary
        self._pending: dict[str, Any] = {}  # bpm, tempo, meter: applied between phrases
        self._missing: set[int] = set()  # preset numbers already logged as missing
        self._state: str | None = None  # the state last sent on the state CC
        self._state_sent: tuple[float, int, int] | None = None  # (time, cc, value)
        self._clicks: tuple | None = None  # the pulse the clicks were scheduled on
        self._next_click = 0  # tick of the next click to hand over
        self._thru_pedal: set[int] = set()  # channels whose sustain went down in thru
        self._model = options["model"]  # the model asked for last (loading or in use)
        self._requests = 0  # model loads asked for; only the latest one counts
        self._loaded: list[tuple[int, str | None, Generator | BaseException]] = []
        self._swap: tuple[str | None, Generator] | None = None  # waits for a phrase boundary
        self._lock = threading.Lock()  # guards _loaded (the loader thread appends)
        self._now = 0.0  # the time of the current (or last) poll

    @classmethod
    def from_config(cls, config: Any) -> CallMode:
        settings = EngineSettings.from_config(config)
        generator = make_generator(config.model, config.device, config.style)
        warm_up(generator, settings, config.tempo == "follow")
        if config.profile is not None and isinstance(generator, BlendGenerator):
            attach_profile(generator, config.profile)  # after the warm-up: it learns nothing
        clock = Clock(config.bpm, settings.meter)
        stage = Stage.from_config(config)
        tempo = (stage.clock_in if stage is not None and stage.clock_in is not None
                 else make_tempo(config.tempo, config.bpm))  # --clock-in replaces --tempo
        engine = CallResponse(generator, clock, tempo, settings,
                              np.random.default_rng(config.seed))
        return cls(engine, None if config.channel is None else config.channel - 1, config,
                   stage)

    def start(self, scheduler: Scheduler) -> None:
        super().start(scheduler)
        if self.stage is not None:
            self.stage.start(scheduler, self.engine)

    def on_message(self, message: mido.Message, when: float) -> None:
        if self.stage is None or self.stage.on_input(message, when):
            self._inbox.append((message, when))

    def on_clock(self, message: mido.Message, when: float) -> None:
        if self.stage is not None:
            self.stage.on_clock(message, when)

    def poll(self, now: float) -> float | None:
        """Handle the queued input, then the engine's work due at ``now``; returns the
        seconds until the engine next needs a poll (None: only on input)."""
        engine = self.engine
        self._now = now
        if self.stage is not None:
            self.stage.before(engine, now)
        self._take_model()
        self._between_phrases(now)
        while self._inbox:
            message, when = self._inbox.popleft()
            self._input(message, when, now)
        wake = None
        if self.submode == "call":
            self._out(engine.poll(now), now)
            self._between_phrases(now)
            wake = engine.wakeup()
            click = self._metronome(now)
            if click is not None:
                wake = click if wake is None else min(wake, click)
        self._feedback(now)
        if self.stage is not None:
            wake = self.stage.after(engine, now, wake)
        return None if wake is None else wake - now

    def _input(self, message: mido.Message, when: float, now: float) -> None:
        """One input message: a control's, the echo of jam's own output, or the player's."""
        actions = self.controls.handle(message)
        if actions is not None:
            for action in actions:
                self._act(action, when, now)
            return
        if self.submode == "mute":
            return
        engine, kind = self.engine, message.type
        if kind == "note_on" and message.velocity > 0:
            if self.echo.is_echo(when, message.note, message.channel):
                log.debug("echo of note %d ignored", message.note)
                return
        elif kind in ("note_on", "note_off"):
            if self.echo.is_echo_off(message.note):
                return
        elif kind == "control_change" and self._state_sent is not None:
            sent, control, value = self._state_sent
            if (message.control, message.value) == (control, value) and \
                    when - sent < self.echo.window:
                return
        if self.submode == "thru":
            self._forward(message, when)
        elif kind == "note_on" and message.velocity > 0:
            self._player_channel = message.channel
            self._out(engine.note_on(message.note, message.velocity, when), now)
        elif kind in ("note_on", "note_off"):
            engine.note_off(message.note, when)
        elif kind == "control_change":
            self._out(engine.control(message.control, message.value, when), now)

    def _forward(self, message: mido.Message, when: float) -> None:
        """Thru: the input goes out at once, as :class:`~jam.engine.thru.ThruMode` does."""
        if self.channel is not None and hasattr(message, "channel"):
            message = message.copy(channel=self.channel)
        if message.type == "note_on" and message.velocity > 0:
            self.echo.sent(when, message.note, tag=THRU)
        elif message.type == "control_change" and message.control == CC_SUSTAIN:
            (self._thru_pedal.add if message.value >= 64 else self._thru_pedal.discard)(
                message.channel)
        self.scheduler.send_at(when, message, tag=THRU)

    def _out(self, events: list[AnswerNote | Stop], now: float) -> None:
        scheduler: Scheduler = self.scheduler
        channel = self._player_channel if self.channel is None else self.channel
        early = self.engine.latency
        for event in events:
            if isinstance(event, Stop):
                scheduler.cancel(event.answer)
                self.echo.unsend(now, event.answer)
                continue
            self.echo.sent(event.on - early, event.pitch, tag=event.answer)
            scheduler.schedule(  # note-on and note-off as their bytes (nothing to convert)
                ((event.on - early, (0x90 | channel, event.pitch, event.velocity)),
                 (event.off - early, (0x80 | channel, event.pitch, 0))),
                tag=event.answer)

    # --- controls ------------------------------------------------------------------------

    def _act(self, action: Action, when: float, now: float) -> None:
        name, source = action.name, action.source
        if name in CONTINUOUS:
            self.apply({name: action.value}, source)
        elif name == PRESET:
            self.select_preset(int(action.value or 0), source)
        elif name in ("next_preset", "previous_preset"):
            count = len(self.presets)
            if not count:
                self.select_preset(0, f"{name}, {source}")
            elif self.preset is None:
                self.select_preset(0 if name == "next_preset" else count - 1, source)
            else:
                step = 1 if name == "next_preset" else -1
                self.select_preset((self.preset + step) % count, source)
        elif name == "mode":
            self._set_submode(SUBMODES[(SUBMODES.index(self.submode) + 1) % len(SUBMODES)],
                              source, now)
        elif name == "panic":
            self._out(self.engine.silence(now), now)
            self._cancel_clicks()  # handed over again from the next poll
            self.scheduler.panic()
            self._thru_pedal.clear()
            log.info("panic (%s)", source)
        elif name == "tap":
            self._tap(when, source)
        elif name == "key_lock":
            if self.options["key"] != "auto":
                self.apply({"key": "auto"}, f"key_lock, {source}")
            elif self.engine.last_key is None:
                log.info("key_lock (%s): no key estimated yet; play a phrase first", source)
            else:
                self.apply({"key": self.engine.last_key.name}, f"key_lock, {source}")
        elif name == "reset":
            self._out(self.engine.reset(np.random.default_rng(self.options["seed"])), now)
            self.taps = TapTempo()
            self._tapped = None
            self._cancel_clicks()
            log.info("reset (%s): history forgotten, the next note starts afresh", source)
        else:  # end_call, replay, reroll: the call mode's
            self._trigger(name, source, now)

    def _trigger(self, name: str, source: str, now: float) -> None:
        if self.submode != "call":
            log.info("%s (%s): ignored in %s mode", name, source, self.submode)
            return
        engine = self.engine
        if name == "end_call":
            events, why = engine.hand_over(now), "no call in progress"
        elif name == "replay":
            events, why = engine.replay(now), "nothing to replay, or not between phrases"
        else:
            events, why = engine.reroll(now), "no call answered yet, or a call in progress"
        if events:
            log.info("%s (%s)", name, source)
            self._out(events, now)
        else:
            log.info("%s (%s): ignored, %s", name, source, why)

    def _tap(self, when: float, source: str) -> None:
        tapped = self.taps.tap(when)
        if tapped is None:
            return
        bpm = round(tapped.bpm, 2)
        if not 20 <= bpm <= 300:
            log.info("tap (%s): %g BPM is outside 20-300, ignored", source, bpm)
            return
        self._tapped = Tapped(bpm, tapped.origin)
        if bpm == self.options["bpm"]:
            log.debug("bpm %g (tap, %s): the beat moves to the taps", bpm, source)
        self.apply({"bpm": bpm}, f"tap, {source}")

    def _set_submode(self, submode: str, source: str, now: float) -> None:
        if self.submode == "call":
            self._out(self.engine.silence(now), now)
            self._cancel_clicks()
        elif self.submode == "thru":
            self.scheduler.cancel(THRU)  # note-offs for what the player still holds
            for channel in sorted(self._thru_pedal):
                self.scheduler.send_now(mido.Message("control_change", channel=channel,
                                                     control=CC_SUSTAIN, value=0))
            self._thru_pedal.clear()
        self.submode = submode
        log.info("mode %s (%s)", submode, source)

    def select_preset(self, index: int, source: str) -> None:
        """Apply preset ``index`` of the ``presets`` option (none there: logged once)."""
        if not 0 <= index < len(self.presets):
            if index not in self._missing:
                self._missing.add(index)
                log.info("no preset %d (%s): the config has %d; ignored", index, source,
                         len(self.presets))
            return
        self.preset = index
        log.info("preset %d (%s)", index, source)
        self.apply(self.presets[index], f"preset {index}")

    # --- options -------------------------------------------------------------------------

    def apply(self, options: Mapping[str, Any], source: str = "") -> dict[str, Any]:
        """Change options while running: the one way controls, presets and reloads do it.

        Each value is checked as in the config file (a bad one is logged and skipped, never
        raised), each change logged once (``temperature 0.73 (cc 74)``). Sampling, length,
        key, range and the phrase detector take effect with the next answer; ``bpm``,
        ``tempo`` and ``meter`` between phrases (never under an answer or a call); a new
        ``model`` loads in a background thread and is swapped in between phrases. Returns
        the changes taken."""
        where = f"({source})" if source else "(applied)"
        changes: dict[str, Any] = {}
        for key, value in options.items():
            if key not in LIVE_KEYS:
                log.warning("%s %s: cannot change while jam runs; restart jam", key, where)
                continue
            try:
                value = check_value(key, value, where)
            except JamError as err:
                log.warning("%s", err)
                continue
            current = self._model if key == "model" else self.options[key]
            if value != current:
                changes[key] = value
        low = changes.get("low", self.options["low"])
        high = changes.get("high", self.options["high"])
        if low > high:
            log.warning("low %d is above high %d %s: range not changed", low, high, where)
            changes.pop("low", None)
            changes.pop("high", None)
        for key, value in changes.items():
            if key == "model":
                self._load(value, source)
                continue
            log.info("%s %s %s", key, _shown(value), where)
            self.options[key] = value
            if key in _BETWEEN_PHRASES:
                self._pending[key] = value
        self._changed(changes)
        return changes

    def _changed(self, changes: Mapping[str, Any]) -> None:
        """Put changed options (already in :attr:`options`) to work, except the clock's."""
        options, engine = self.options, self.engine
        if changes.keys() & {"temperature", "top_p", *_SETTINGS}:
            engine.update(replace(
                engine.settings, sampler=SamplerSettings(options["temperature"],
                                                         options["top_p"]),
                **{key: options[key] for key in _SETTINGS}))
        if "channel" in changes:
            self.channel = None if options["channel"] is None else options["channel"] - 1
        if "style" in changes and isinstance(engine.generator, BlendGenerator):
            engine.generator.style = options["style"]  # the next answer's blend
        if "output_latency" in changes:
            engine.latency = options["output_latency"] / 1000  # the clicks follow it
        if "echo_window" in changes:
            self.echo.window = options["echo_window"] / 1000
        if changes.keys() & {"controls", "end_call_cc"}:
            self.controls = ControlMap(options["controls"], options["end_call_cc"])
        if "presets" in changes:
            self.presets, self.preset = list(options["presets"]), None
            self._missing.clear()
        if "state_cc" in changes:
            self._state = None  # send the state on the new controller
        if changes.keys() & {"metronome", "metronome_channel"}:
            self._cancel_clicks()

    def _between_phrases(self, now: float) -> None:
        """Apply the clock's pending changes (tempo, tempo source, meter, a tapped beat)
        and swap in a loaded model, when no answer plays and no call is in progress."""
        engine = self.engine
        if not engine.idle:
            return
        if self._swap is not None:
            model, generator = self._swap
            self._swap = None
            engine.use(generator)
            self.options["model"] = model
            log.info("model %s in use", model or "default")
        if not self._pending and self._tapped is None:
            return
        pending, self._pending = self._pending, {}
        tapped, self._tapped = self._tapped, None
        bpm = self.options["bpm"]
        if "meter" in pending:
            engine.update(replace(engine.settings, meter=Meter.parse(pending["meter"])))
        tempo, clock = engine.listener.tempo, engine.clock
        moved = pending.keys() & {"tempo", "bpm"} or tapped is not None
        if moved and not isinstance(tempo, (FixedTempo, FollowTempo)):
            log.info("tempo not changed: it follows %s", type(tempo).__name__)  # MIDI clock
        elif moved:
            if "tempo" in pending:
                tempo = engine.listener.tempo = make_tempo(pending["tempo"], bpm)
            if isinstance(tempo, FixedTempo):
                tempo.bpm = bpm
            else:
                tempo.prior_bpm = bpm
            if tapped is not None:
                clock.set_pulse(Pulse(tapped.bpm, tapped.origin))
            elif clock.anchored:
                clock.set_tempo(bpm, now)
            else:
                clock.bpm = bpm

    def reload(self, config: Config) -> None:
        """A new configuration (SIGHUP): apply what changed in it since the start or the
        last reload (through :meth:`apply`); say which changes need a restart."""
        new = config.as_dict()
        changed = {key: value for key, value in new.items() if value != self._base.get(key)}
        self._base = new
        live = {key: value for key, value in changed.items() if key in LIVE_KEYS}
        fixed = [key for key in changed if key not in LIVE_KEYS]
        if fixed:
            log.info("reload: %s changed; the call mode takes %s only at a restart",
                     ", ".join(fixed), "it" if len(fixed) == 1 else "them")
        if live:
            self.apply(live, "reload")
        elif not fixed:
            log.info("reload: no option changed")

    # --- the model of a preset -----------------------------------------------------------

    def _load(self, model: str | None, source: str) -> None:
        """Load ``model`` in a thread of its own; :meth:`_take_model` picks it up."""
        self._model = model
        self._requests += 1
        self._swap = None
        if model == self.options["model"]:  # back to the model in use: nothing to load
            log.info("model %s (%s): kept", model or "default", source)
            return
        request, device, style = self._requests, self.options["device"], self.options["style"]
        settings, follow = self.engine.settings, self.options["tempo"] == "follow"
        log.info("model %s (%s): loading in the background", model or "default", source)

        def load() -> None:
            result: Generator | BaseException
            try:
                result = make_generator(model, device, style)
                warm_up(result, settings, follow)
            except Exception as err:  # noqa: BLE001 - a bad model file keeps the current one
                result = err
            with self._lock:
                self._loaded.append((request, model, result))

        threading.Thread(target=load, name="jam-model-load", daemon=True).start()

    def _take_model(self) -> None:
        with self._lock:
            loaded, self._loaded = self._loaded, []
        for request, model, result in loaded:
            if request != self._requests:
                continue  # another model was asked for meanwhile
            if isinstance(result, BaseException):
                self._model = self.options["model"]
                log.warning("model %s not loaded, keeping %s: %s", model or "default",
                            self.options["model"] or "default", _one_line(result))
            else:
                self._swap = (model, result)

    # --- feedback ------------------------------------------------------------------------

    @property
    def state(self) -> str:
        """idle (waiting for a call; also in thru and mute), listening, answering."""
        engine = self.engine
        if self.submode != "call" or engine.idle:
            return "idle"
        return "answering" if engine.answer is not None else "listening"

    def _feedback(self, now: float) -> None:
        """Send the state on the state CC when it changed."""
        state = self.state
        if state == self._state:
            return
        self._state = state
        control = self.options["state_cc"]
        if control is None:
            return
        channel = self._player_channel if self.channel is None else self.channel
        value = STATES[state]
        self.scheduler.send_now(mido.Message("control_change", channel=channel,
                                             control=control, value=value))
        self._state_sent = (now, control, value)

    def _cancel_clicks(self) -> None:
        if self._clicks is not None:
            self.scheduler.cancel(METRONOME)
            self.echo.unsend(self._now, METRONOME)
        self._clicks = None

    def _metronome(self, now: float) -> float | None:
        """Hand the clicks due within :data:`CLICK_AHEAD` to the scheduler; returns when
        to come back (None: no clicks)."""
        clock = self.engine.clock
        if not self.options["metronome"] or not clock.anchored:
            self._cancel_clicks()
            return None
        meter, early = self.engine.settings.meter, self.engine.latency
        channel = self.options["metronome_channel"] - 1
        pulse = (clock.bpm, clock.origin, meter, channel, early)
        if pulse != self._clicks:  # new, or the clock moved: the clicks follow it
            self._cancel_clicks()
            self._clicks = pulse
            self._next_click = clock.next_boundary(now + early + CLICK_MARGIN, meter.beat_ticks)
        events = []
        while clock.seconds(self._next_click) - early <= now + CLICK_AHEAD:
            at = clock.seconds(self._next_click) - early
            down = 0 if self._next_click % meter.bar_ticks == 0 else 1
            note = CLICKS[down]
            events += [(at, (0x90 | channel, note, CLICK_VELOCITIES[down])),
                       (at + CLICK_LENGTH, (0x80 | channel, note, 0))]
            self.echo.sent(at, note, channel, tag=METRONOME)
            self._next_click += meter.beat_ticks
        if events:
            self.scheduler.schedule(events, tag=METRONOME)
        return clock.seconds(self._next_click) - early - CLICK_AHEAD

    def status(self) -> dict[str, Any]:
        """What the status line shows: mode, state, tempo, key, the last answer, echoes,
        preset, model."""
        engine = self.engine
        key = engine.settings.key
        if key == "auto" and engine.last_key is not None:
            key = f"{engine.last_key.name} (auto)"
        last = engine.last
        bar = engine.settings.meter.bar_ticks
        return {
            "mode": self.submode, "state": self.state, "bpm": round(engine.clock.bpm, 2),
            "key": key,
            "last_answer": None if last is None else {
                "bars": round(last.ticks / bar, 2), "notes": last.notes, "late": int(last.late)},
            "echoes": self.echo.echoes, "preset": self.preset,
            "model": self.options["model"] or "default",
        }

    def stop(self) -> None:
        if self.stage is not None:
            self.stage.stop()
        self._save_profile()
        stats = self.engine.stats
        log.info("call mode: %d calls, %d answers, %d barge-ins, %d answers ended early "
                 "(generation behind), %d echoes ignored", stats.calls, stats.answers,
                 stats.barge_ins, stats.degraded, self.echo.echoes)


    def _save_profile(self) -> None:
        name, generator = self.options.get("profile"), self.engine.generator
        if name is None or not isinstance(generator, BlendGenerator):
            return
        try:
            path = save_profile(name, generator.memory)
        except (OSError, JamError) as err:
            log.warning("profile %s not saved: %s", name, err)
            return
        log.info("profile %s saved to %s (%d tokens learned)", name, path,
                 generator.memory.learned)


def _engine_options(engine: CallResponse) -> dict[str, Any]:
    """The options an engine was built with (a mode made without a config)."""
    s = engine.settings
    return {"meter": str(s.meter), "temperature": s.sampler.temperature,
            "top_p": s.sampler.top_p, "bpm": engine.clock.bpm,
            **{key: getattr(s, key) for key in _SETTINGS}}
