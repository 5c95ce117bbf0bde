"""Options: defaults, validation, the YAML config file and the CLI flags, from one table.

Every option is a key of a flat YAML mapping and a CLI flag with the same name
(``max_call`` <-> ``--max-call``). Precedence: command line > config file > defaults.
The config file is ``--config FILE``, else ``$XDG_CONFIG_HOME/jam/config.yaml`` (default
``~/.config/jam/config.yaml``) when it exists. Errors are :class:`JamError` naming the key.

The result is a frozen :class:`Config`; its attribute for the key ``in`` is ``in_``
(``in`` is a Python keyword); every other attribute is the key itself.
"""

from __future__ import annotations

import difflib
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import yaml

from jam.errors import JamError
from jam.midi.controls import ACTIONS, parse_binding
from jam.music.meter import Meter
from jam.music.theory import parse_key

NULL_WORDS = ("none", "null")  # strings that unset a nullable option (CLI, and in the file)


@dataclass(frozen=True)
class Option:
    """One option: its key, default, help text and checker.

    ``check(value)`` returns the normalized value or raises ``ValueError`` whose text says
    what is expected. ``from_text`` turns a command-line string into the value to check.
    """

    key: str
    default: Any
    help: str
    check: Callable[[Any], Any]
    from_text: Callable[[str], Any]
    nullable: bool = False
    flag_only: bool = False  # a boolean switch on the command line (``--debug``)
    file_only: bool = False  # a mapping or list: the config file only, no flag

    @property
    def flag(self) -> str:
        return "--" + self.key.replace("_", "-")

    @property
    def attr(self) -> str:
        return self.key + "_" if self.key == "in" else self.key


# --- checkers: value -> normalized value, or ValueError("expected ...") -----------------


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _number(low: float | None = None, high: float | None = None, *, integer: bool = False,
            low_open: bool = False) -> Callable[[Any], Any]:
    kind = "an integer" if integer else "a number"
    if low is not None and high is not None:
        expected = f"{kind} from {'above ' if low_open else ''}{low:g} to {high:g}"
    elif low is not None:
        expected = f"{kind} {'>' if low_open else '>='} {low:g}"
    else:
        expected = kind

    def check(value: Any) -> Any:
        if not _is_number(value):
            raise ValueError(f"expected {expected}")
        try:
            number = float(value)
        except OverflowError:  # an integer with more than ~308 digits
            raise ValueError(f"expected {expected} (this one is too large)") from None
        if not math.isfinite(number) or (integer and not number.is_integer()):
            raise ValueError(f"expected {expected}")
        if low is not None and (number <= low if low_open else number < low):
            raise ValueError(f"expected {expected}")
        if high is not None and number > high:
            raise ValueError(f"expected {expected}")
        return int(value) if integer else number

    check.limits = NumberLimits(low, high, integer, low_open)  # type: ignore[attr-defined]
    return check


@dataclass(frozen=True)
class NumberLimits:
    """The range a numeric option's checker accepts (``check.limits``): ``low`` (excluded
    when ``low_open``) to ``high``; None: no limit that side."""

    low: float | None
    high: float | None
    integer: bool
    low_open: bool


def _choice(*choices: str) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if not isinstance(value, str) or value.lower() not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}")
        return value.lower()

    return check


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("expected a non-empty string")
    return value


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("expected true or false")
    return value


def _meter(value: Any) -> str:
    return str(Meter.parse(value))  # ValueError says what is expected


def _key(value: Any) -> str:
    if isinstance(value, str):
        if value.strip().lower() == "auto":
            return "auto"
        try:
            return parse_key(value).name
        except ValueError:
            pass
    raise ValueError('expected "auto", a key such as "C major" or "F# minor", or null')


def _style(value: Any) -> float | str:
    if isinstance(value, str) and value.strip().lower() == "auto":
        return "auto"
    if _is_number(value) and 0 <= value <= 1:
        return float(value)
    raise ValueError('expected "auto" or a number from 0 to 1')


_style.limits = NumberLimits(0, 1, False, False)  # type: ignore[attr-defined]


def _controls(value: Any) -> dict[str, str]:
    """``action: "cc N [ch C]" | "note N [ch C]" | "program [ch C]"`` (see
    :mod:`jam.midi.controls`), normalized; an unknown action gets a suggestion."""
    if not isinstance(value, dict):
        raise ValueError('expected a mapping of action: control, e.g. {temperature: "cc 74"}')
    out = {}
    for action, text in value.items():
        if action not in ACTIONS:
            close = difflib.get_close_matches(str(action), ACTIONS, n=1, cutoff=0.6)
            hint = f"did you mean '{close[0]}'?" if close else f"actions: {', '.join(ACTIONS)}"
            raise ValueError(f"unknown action '{action}' ({hint})")
        try:
            out[str(action)] = str(parse_binding(text))
        except ValueError as err:
            raise ValueError(f"control of '{action}': {err}") from None
    return out


# the options a preset may set (a Program Change or a footswitch selects a preset)
PRESET_KEYS = ("model", "temperature", "top_p", "answer_bars", "max_answer_bars", "channel",
               "bpm", "tempo", "meter", "key", "low", "high", "listen_silence", "align",
               "style")


def _presets(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not all(isinstance(p, dict) for p in value):
        raise ValueError("expected a list of mappings of option: value (one per preset)")
    out = []
    for index, preset in enumerate(value):
        checked = {}
        for key, item in preset.items():
            if key not in PRESET_KEYS:
                raise ValueError(f"preset {index}: '{key}' cannot be set by a preset "
                                 f"(these can: {', '.join(PRESET_KEYS)})")
            checked[key] = check_value(key, item, f"in preset {index}")
        out.append(checked)
    return out


def _number_text(text: str) -> Any:
    """Command-line text to int or float (the checker then says if the kind is wrong)."""
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return text


def _same(text: str) -> str:
    return text


def _opt(key: str, default: Any, help: str, check: Callable[[Any], Any], *,
         nullable: bool = False, numeric: bool = False, flag_only: bool = False,
         file_only: bool = False, switch: bool = False) -> Option:
    from_text = _number_text if numeric else _switch if switch else _same
    return Option(key, default, help, check, from_text, nullable=nullable,
                  flag_only=flag_only, file_only=file_only)


def _switch(text: str) -> Any:
    """Command-line text of a boolean option: on/off, true/false, yes/no."""
    lowered = text.strip().lower()
    if lowered in ("on", "true", "yes", "1"):
        return True
    if lowered in ("off", "false", "no", "0"):
        return False
    return text


OPTIONS: tuple[Option, ...] = (
    _opt("api", "auto", "MIDI API: auto, alsa, jack, coremidi or winmm",
         _choice("auto", "alsa", "jack", "coremidi", "winmm")),
    _opt("in", None, "input port: exact name or case-insensitive part of it "
         "(none: open a virtual port 'jam in')", _text, nullable=True),
    _opt("out", None, "output port: exact name or case-insensitive part of it "
         "(none: open a virtual port 'jam out')", _text, nullable=True),
    _opt("channel", None, "send everything on this MIDI channel, 1-16 (none: keep channels)",
         _number(1, 16, integer=True), nullable=True, numeric=True),
    _opt("mode", "call", "call (call and response) or thru (forward the input)",
         _choice("call", "thru")),
    _opt("model", None, 'ONNX model file, or "rules" (none: the shipped default model)',
         _text, nullable=True),
    _opt("device", "auto", "inference device: auto, cpu or cuda", _choice("auto", "cpu", "cuda")),
    _opt("bpm", 120.0, "tempo in beats per minute, 20-300", _number(20, 300), numeric=True),
    _opt("tempo", "fixed", "fixed (use --bpm) or follow (follow the player)",
         _choice("fixed", "follow")),
    _opt("meter", "4/4", 'time signature, e.g. "4/4", "3/4", "6/8"', _meter),
    _opt("listen_silence", 1.0, "beats of silence that end a call (above 0, up to 64)",
         _number(0, 64, low_open=True), numeric=True),
    _opt("end_call_cc", None, "controller number (0-127) that ends a call (none: off)",
         _number(0, 127, integer=True), nullable=True, numeric=True),
    _opt("max_call", 4, "longest call in bars (1-64)", _number(1, 64, integer=True),
         numeric=True),
    _opt("align", "beat", "start the answer on the next beat or bar", _choice("beat", "bar")),
    _opt("answer_bars", None, "answer length in bars, 1-64 (none: as long as the call)",
         _number(1, 64, integer=True), nullable=True, numeric=True),
    _opt("max_answer_bars", 8, "longest answer in bars (1-64)", _number(1, 64, integer=True),
         numeric=True),
    _opt("temperature", 1.0, "sampling temperature, >= 0 (0: always the likeliest token)",
         _number(0), numeric=True),
    _opt("top_p", 0.95, "nucleus sampling mass, above 0 up to 1", _number(0, 1, low_open=True),
         numeric=True),
    _opt("seed", None, "random seed, 0 or more (none: different every run)",
         _number(0, integer=True), nullable=True, numeric=True),
    _opt("key", "auto", 'key of the answer: "auto" (estimated from the call), e.g. '
         '"C major" or "F# minor", or none (no key mask)', _key, nullable=True),
    _opt("low", 36, "lowest answer pitch (MIDI note number)", _number(0, 127, integer=True),
         numeric=True),
    _opt("high", 96, "highest answer pitch (MIDI note number)", _number(0, 127, integer=True),
         numeric=True),
    _opt("barge_in", "stop", "when the player starts during an answer: stop it or ignore",
         _choice("stop", "ignore")),
    _opt("lookahead", 1.0, "how far ahead the answer is prepared, in beats",
         _number(0, low_open=True), numeric=True),
    _opt("style", "auto", 'blend of the LSTM with a memory of what you played: "auto" '
         "(weighted by how sure each is), 0 (the LSTM alone) to 1 (the memory alone)",
         _style, numeric=True),
    _opt("profile", None, "keep the memory of your playing across sessions under this name "
         "(none: each session starts afresh)", _text, nullable=True),
    _opt("output_latency", 0.0, "send answers this many ms early, for a synth that sounds "
         "late (0-500)", _number(0, 500), numeric=True),
    _opt("echo_window", 30.0, "ms: a note arriving this soon after jam sent the same pitch "
         "is jam's own echo, not the player (0-1000; 0: off)", _number(0, 1000), numeric=True),
    _opt("state_cc", None, "send jam's state on this controller: idle 0, listening 32, "
         "answering 127 (none: off)", _number(0, 127, integer=True), nullable=True,
         numeric=True),
    _opt("metronome", False, "click the beat, downbeats accented (on or off)", _bool,
         switch=True),
    _opt("metronome_channel", 10, "MIDI channel of the metronome clicks, 1-16",
         _number(1, 16, integer=True), numeric=True),
    _opt("clock_in", None, 'follow MIDI clock from this port ("same": the input port; '
         "none: off)", _text, nullable=True),
    _opt("clock_out", None, "send MIDI clock, start and stop to this port (none: off)", _text,
         nullable=True),
    _opt("record", None, "record each session to a MIDI file in this folder (none: off)",
         _text, nullable=True),
    _opt("controls", {}, "controls from the instrument: action -> control (config file "
         "only)", _controls, file_only=True),
    _opt("presets", [], "option sets selected by Program Change (config file only)", _presets,
         file_only=True),
    _opt("debug", False, "show tracebacks and debug logs", _bool, flag_only=True),
)
OPTIONS_BY_KEY: dict[str, Option] = {o.key: o for o in OPTIONS}


@dataclass(frozen=True)
class Config:
    """The effective configuration (see :data:`OPTIONS` for meanings and defaults)."""

    api: str
    in_: str | None
    out: str | None
    channel: int | None
    mode: str
    model: str | None
    device: str
    bpm: float
    tempo: str
    meter: str
    listen_silence: float
    end_call_cc: int | None
    max_call: int
    align: str
    answer_bars: int | None
    max_answer_bars: int
    temperature: float
    top_p: float
    seed: int | None
    key: str | None
    low: int
    high: int
    barge_in: str
    lookahead: float
    style: float | str
    profile: str | None
    output_latency: float
    echo_window: float
    state_cc: int | None
    metronome: bool
    metronome_channel: int
    clock_in: str | None
    clock_out: str | None
    record: str | None
    controls: dict[str, str]
    presets: list[dict[str, Any]]
    debug: bool
    source: Path | None = None  # the config file that was read, if any

    def as_dict(self) -> dict[str, Any]:
        """Key -> value in option order, as in the YAML file."""
        return {o.key: getattr(self, o.attr) for o in OPTIONS}

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.as_dict(), sort_keys=False, default_flow_style=False)


def default_config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "jam" / "config.yaml"


def _suggest(key: str) -> str:
    close = difflib.get_close_matches(key, list(OPTIONS_BY_KEY), n=1, cutoff=0.6)
    if close:
        return f"; did you mean '{close[0]}'?"
    return f"; known keys: {', '.join(OPTIONS_BY_KEY)}"


def check_value(key: str, value: Any, where: str) -> Any:
    """Validate one value for ``key``; ``where`` names its origin in the error message."""
    option = OPTIONS_BY_KEY.get(key)
    if option is None:
        raise JamError(f"unknown option '{key}' {where}{_suggest(key)}")
    if option.nullable and (value is None or isinstance(value, str)
                            and value.strip().lower() in NULL_WORDS):
        return None
    try:
        return option.check(value)
    except ValueError as err:
        shown = "null" if value is None else repr(value)
        if len(shown) > 80:  # one readable line, whatever was given
            shown = f"{shown[:60]}... ({len(shown)} characters)"
        raise JamError(f"bad value for '{key}' {where}: {err}, got {shown}") from None


def read_config_file(path: Path) -> dict[str, Any]:
    """Read and validate a YAML config file (a flat mapping of option keys)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise JamError(f"config file {path} does not exist; check the --config path") from None
    except (OSError, UnicodeDecodeError) as err:
        raise JamError(f"cannot read config file {path}: {err}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or "malformed YAML"
        raise JamError(f"config file {path} is not valid YAML{at}: {problem}") from None
    except RecursionError:
        raise JamError(f"config file {path} nests lists or mappings too deeply to read; "
                       f"a config file is a flat mapping of option: value") from None
    except ValueError as err:  # e.g. an integer of more than 4300 digits
        problem = str(err).split(";")[0]
        raise JamError(f"config file {path} has a value jam cannot read: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise JamError(f"config file {path} must be a mapping of option: value, "
                       f"got a {type(data).__name__}")
    where = f"in {path}"
    return {str(k): check_value(str(k), v, where) for k, v in data.items()}


def parse_cli_value(key: str, text: str) -> Any:
    """Validate a command-line value for ``key`` ("none" unsets a nullable option)."""
    option = OPTIONS_BY_KEY[key]
    return check_value(key, option.from_text(text), f"({option.flag})")


def default_config() -> Config:
    """The shipped defaults alone (no config file is read): what tools and tests measure
    when they mean "the product as installed"."""
    return Config(**{o.attr: o.default for o in OPTIONS})


def build_config(cli: Mapping[str, Any], config_path: str | Path | None = None, *,
                 missing_ok: bool = False) -> Config:
    """Merge defaults < config file < ``cli`` (values given on the command line, or by a
    program; checked again here). ``config_path`` None: the default path, if it exists.
    ``missing_ok``: a ``config_path`` that does not exist is read as empty (for a command
    that creates it) instead of an error.
    """
    values = {o.key: o.default for o in OPTIONS}
    if config_path is not None:
        source: Path | None = Path(config_path).expanduser()
        if missing_ok and not source.exists():
            source = None
    else:
        source = default_config_path()
        if not source.is_file():
            source = None
    if source is not None:
        values.update(read_config_file(source))
    values.update({k: check_value(k, v, "(given)") for k, v in cli.items()})
    low, high = values["low"], values["high"]
    if low > high:
        raise JamError(f"'low' ({low}) is above 'high' ({high}); swap them or widen the range")
    if values["answer_bars"] is not None and values["answer_bars"] > values["max_answer_bars"]:
        raise JamError(f"'answer_bars' ({values['answer_bars']}) is above 'max_answer_bars' "
                       f"({values['max_answer_bars']}); raise max_answer_bars")
    fields = {OPTIONS_BY_KEY[k].attr: v for k, v in values.items()}
    return Config(**fields, source=source)

