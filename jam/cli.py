"""Command line: argument parsing and dispatch only (the work lives in the modules it calls).

``jam [options]`` runs the main job (the mode given by ``--mode``); ``jam COMMAND [options]``
runs a subcommand from :data:`COMMANDS`. To add a subcommand, write a ``_cmd_x(config, args)``
function (and, if it takes its own arguments, an ``add_arguments(parser)``) and add one
:class:`Command` line to :data:`COMMANDS`. Every option of :mod:`jam.config` is accepted by
the main job and by every subcommand.

Exit codes: 0 success, 1 internal error (one line; traceback with ``--debug``),
2 user error (:class:`JamError`, bad arguments), 130 interrupted before the run loop.
"""

from __future__ import annotations

import argparse
import difflib
import sys
import traceback
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Sequence

from jam import __version__
from jam.config import OPTIONS, Config, build_config, parse_cli_value
from jam.errors import JamError

if TYPE_CHECKING:
    from jam.engine.runner import Mode


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad command line as one :class:`JamError` line."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise JamError(f"{message} (see '{self.prog} --help')")


@dataclass(frozen=True)
class Command:
    """A subcommand: ``run(config, args)`` returns the exit code."""

    name: str
    help: str
    run: Callable[[Config, argparse.Namespace], int]
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None
    creates_config: bool = False  # it writes the config file: --config FILE may not exist yet


def _cmd_ports(config: Config, args: argparse.Namespace) -> int:
    from jam.midi.ports import RtMidiSystem

    with RtMidiSystem.connect(config.api) as system:
        print(system.describe())
    return 0


def _cmd_config(config: Config, args: argparse.Namespace) -> int:
    origin = f"config file: {config.source}" if config.source else "no config file"
    print(f"# effective configuration ({origin}; command line > file > defaults)")
    print(config.to_yaml(), end="")
    return 0


def _cmd_panic(config: Config, args: argparse.Namespace) -> int:
    from jam.midi.ports import RtMidiSystem, close_output
    from jam.midi.tracker import silence_messages

    if config.out is None:
        raise JamError("jam panic needs --out PORT (list ports with 'jam ports')")
    with RtMidiSystem.connect(config.api) as system:
        port = system.open_output(config.out)
        try:
            for message in silence_messages(range(16)):
                port.send(message)
        finally:
            close_output(port)
    print(f"sent all-notes-off on 16 channels to '{port.name}'")
    return 0


def _cmd_doctor(config: Config, args: argparse.Namespace) -> int:
    from jam.service import doctor

    return doctor.run(config)


def _render_arguments(parser: argparse.ArgumentParser) -> None:
    from jam.render import SOUNDFONT

    parser.add_argument("session", metavar="SESSION.mid",
                        help="a MIDI file: a recording, or the output of jam respond")
    parser.add_argument("-o", "--output", metavar="OUT.wav", help="write the audio here")
    parser.add_argument("--png", metavar="OUT.png",
                        help="also draw a piano roll (jam's notes and yours in two colours)")
    parser.add_argument("--soundfont", metavar="SF2", default=SOUNDFONT,
                        help=f"General MIDI soundfont [{SOUNDFONT}]")
    parser.add_argument("--force", action="store_true", help="replace the outputs if they exist")


def _cmd_render(config: Config, args: argparse.Namespace) -> int:
    from jam.render import render_png, render_wav

    if args.output is None and args.png is None:
        raise JamError("jam render needs -o OUT.wav, --png OUT.png or both")
    if args.output is not None:
        print(f"wrote {render_wav(args.session, args.output, args.soundfont, args.force)}")
    if args.png is not None:
        print(f"wrote {render_png(args.session, args.png, args.force)}")
    return 0


def _respond_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("call", metavar="CALL.mid", help="the call: a MIDI file")
    parser.add_argument("-o", "--output", metavar="OUT.mid", required=True,
                        help="where to write the call and the answer (two tracks)")
    parser.add_argument("--answer-only", action="store_true",
                        help="write only the answer (at its place after the call)")
    parser.add_argument("--force", action="store_true", help="replace OUT.mid if it exists")


def _cmd_respond(config: Config, args: argparse.Namespace) -> int:
    from jam.engine.assembly import respond_file

    # the file's own tempo and meter unless --bpm / --meter are on the command line
    bpm = config.bpm if hasattr(args, "bpm") else None
    meter = config.meter if hasattr(args, "meter") else None
    summary = respond_file(config, args.call, args.output, bpm=bpm, meter=meter,
                           answer_only=args.answer_only, overwrite=args.force)
    print(summary)
    return 0


def _model_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE", nargs="?", default=None,
                        help="an exported ONNX model (default: --model, else the shipped model)")


def _cmd_model(config: Config, args: argparse.Namespace) -> int:
    from jam.model.runtime import load_model, model_card

    path = args.file if args.file is not None else config.model
    if path is not None and path.lower() == "rules":
        raise JamError("--model rules is the rule-based responder: no model file to describe")
    print(model_card(load_model(path, device="cpu")))
    return 0


def _learn_arguments(parser: argparse.ArgumentParser) -> None:
    from jam.midi.controls import ACTIONS

    parser.add_argument("action", metavar="ACTION",
                        help=f"what the control will do: {', '.join(ACTIONS)}")
    parser.add_argument("--timeout", metavar="SECONDS", type=float, default=30.0,
                        help="give up after this long with nothing moved [30]")


def _cmd_learn(config: Config, args: argparse.Namespace) -> int:
    from pathlib import Path

    from jam.config import default_config_path
    from jam.midi.learn import learn

    if not args.timeout > 0:
        raise JamError(f"--timeout must be above 0 seconds, got {args.timeout:g}")
    path = Path(args.config).expanduser() if hasattr(args, "config") else default_config_path()
    print(learn(config, args.action, path, args.timeout))
    return 0


COMMANDS: tuple[Command, ...] = (
    Command("ports", "list the MIDI input and output ports", _cmd_ports),
    Command("config", "print the effective configuration as YAML", _cmd_config),
    Command("panic", "send all-notes-off (CC64=0, CC123, CC120) on all 16 channels to --out",
            _cmd_panic),
    Command("respond", "answer a call from a MIDI file offline (deterministic with --seed)",
            _cmd_respond, _respond_arguments),
    Command("model", "print a model's card: network, data, licences, held-out bits per note",
            _cmd_model, _model_arguments),
    Command("learn", "bind the next control moved or pressed on --in to ACTION, in the "
            "config file", _cmd_learn, _learn_arguments, creates_config=True),
    Command("doctor", "check MIDI, ports, model speed, timer and real-time scheduling; "
            "say what to fix", _cmd_doctor),
    Command("render", "render a session (a MIDI file) to WAV with FluidSynth, and draw it as "
            "a piano roll", _cmd_render, _render_arguments),
)


def _call_mode(config: Config) -> Mode:
    from jam.engine.live import CallMode

    return CallMode.from_config(config)


def _thru_mode(config: Config) -> Mode:
    from jam.engine.thru import ThruMode

    return ThruMode(channel=config.channel)


# --mode value -> factory(config) returning the mode object the run loop drives
MODES: dict[str, Callable[[Config], Mode]] = {"call": _call_mode, "thru": _thru_mode}


def _run_main(config: Config, args: argparse.Namespace) -> int:
    from jam.engine.runner import run

    mode = MODES[config.mode](config)
    values = _cli_values(args)
    # a reload (SIGHUP) reads the same file again, with the same command-line values on top
    return run(config, mode, load_config=lambda: build_config(values, config.source))


def _option_parent() -> argparse.ArgumentParser:
    parent = _Parser(add_help=False, allow_abbrev=False)
    group = parent.add_argument_group("options (also settable in the config file)")
    group.add_argument("--config", metavar="FILE", default=argparse.SUPPRESS,
                       help="YAML config file (default: ~/.config/jam/config.yaml if present)")
    for option in OPTIONS:
        if option.file_only:
            continue
        if option.flag_only:
            group.add_argument(option.flag, dest=option.key, action="store_true",
                               default=argparse.SUPPRESS, help=option.help)
        else:
            default = "none" if option.default is None else option.default
            group.add_argument(option.flag, dest=option.key, metavar=option.key.upper(),
                               default=argparse.SUPPRESS, help=f"{option.help} [{default}]")
    return parent


def build_parser() -> argparse.ArgumentParser:
    parent = _option_parent()
    parser = _Parser(prog="jam", parents=[parent], allow_abbrev=False,
                     description="A real-time MIDI improvisation partner: play a phrase, "
                                 "jam answers. Without a command, runs the main job.")
    parser.add_argument("--version", action="version", version=f"jam {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for command in COMMANDS:
        child = sub.add_parser(command.name, parents=[parent], help=command.help,
                               description=command.help, allow_abbrev=False)
        if command.add_arguments is not None:
            command.add_arguments(child)
    return parser


def _cli_values(args: argparse.Namespace) -> dict[str, Any]:
    values = {}
    for option in OPTIONS:
        if hasattr(args, option.key):
            raw = getattr(args, option.key)
            values[option.key] = raw if option.flag_only else parse_cli_value(option.key, raw)
    return values


def _check_flags(parser: argparse.ArgumentParser, argv: Sequence[str]) -> None:
    """Name an unknown ``--flag`` with a "did you mean" before argparse misreads it."""
    known: set[str] = set()
    parsers = [parser]
    while parsers:
        current = parsers.pop()
        known.update(current._option_string_actions)
        for action in current._actions:
            if isinstance(action, argparse._SubParsersAction):
                parsers.extend(action.choices.values())
    for arg in argv:
        if arg == "--":
            break
        flag = arg.split("=", 1)[0]
        if flag.startswith("--") and flag not in known:
            close = difflib.get_close_matches(flag, sorted(known), n=1, cutoff=0.7)
            hint = f"; did you mean {close[0]}?" if close else ""
            raise JamError(f"unknown option {flag}{hint} (see 'jam --help')")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``jam`` console script; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    try:
        parser = build_parser()
        _check_flags(parser, argv)
        args = parser.parse_args(argv)
        config = build_config(_cli_values(args), getattr(args, "config", None),
                              missing_ok=any(c.name == args.command and c.creates_config
                                             for c in COMMANDS))
        debug = config.debug
        from jam.service import logs

        logs.configure(debug)
        by_name = {c.name: c for c in COMMANDS}
        handler = by_name[args.command].run if args.command else _run_main
        return handler(config, args)
    except JamError as err:
        if debug:
            traceback.print_exc()
        print(f"jam: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("jam: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # the last line of defence: one line, not a traceback
        if debug:
            traceback.print_exc()
        hint = "" if debug else " (run with --debug for the traceback)"
        print(f"jam: internal error: {type(err).__name__}: {err}{hint}", file=sys.stderr)
        return 1
