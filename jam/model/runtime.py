"""Load and run an exported jam model with onnxruntime (no torch, no onnx package).

A jam model is one ONNX graph (written by ``tools/export_onnx.py``)::

    tokens[1, T] int64, h[L, 1, H], c[L, 1, H]  ->  logits[1, T, V], h_out, c_out

so the same graph steps one token (T = 1) and primes a window (any T). Its
``metadata_props`` carry the representation (:func:`jam.music.tokens.metadata`) plus model
sizes, data sources, training command and metrics; :func:`load_model` refuses a model whose
representation differs from this jam's. The LSTM state lives inside :class:`Model`.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import time
from collections.abc import Callable, Mapping, Sequence
from importlib import resources
from pathlib import Path

import numpy as np

from jam.errors import JamError
from jam.music import tokens as tk

log = logging.getLogger(__name__)

DEVICES = ("auto", "cpu", "cuda")
INPUTS = ("tokens", "h", "c")
OUTPUTS = ("logits", "h_out", "c_out")
_CUDA = "CUDAExecutionProvider"
_CPU = "CPUExecutionProvider"
TIMING_STEPS = 300  # steps timed on each device when ``auto`` has more than the CPU to choose from
SWITCH_BELOW = 0.9  # another device must step in under 90 % of the CPU's median time to win


def default_model_path() -> Path:
    """The model shipped with jam (``models/default.onnx``, installed as ``jam.models``)."""
    try:
        path = Path(str(resources.files("jam.models") / "default.onnx"))
    except ModuleNotFoundError:
        path = None
    if path is None or not path.is_file():
        raise JamError("the default model is not installed; reinstall jam or pass --model MODEL.onnx")
    return path


def _providers(device: str) -> list[str]:
    """onnxruntime providers for a concrete device, ``cpu`` or ``cuda`` (CPU as the fallback)."""
    if device == "cpu":
        return [_CPU]
    if device == "cuda":
        return [_CUDA, _CPU]
    raise ValueError(f"no providers for device {device!r}; resolve 'auto' with pick_device first")


def choose_device(timings: Mapping[str, float]) -> str:
    """The device to use given the median seconds per :meth:`Model.step` measured on each.

    The fastest one, except that CPU keeps the job unless another device's median is below
    ``SWITCH_BELOW`` (90 %) of CPU's: a near tie is noise, and the CPU has no kernel launches
    or host-device copies to add to the slow tail. Without a CPU figure, simply the fastest.
    """
    if not timings:
        raise ValueError("no timings to choose from")
    fastest = min(timings, key=lambda name: (timings[name], name != "cpu"))
    if "cpu" in timings and fastest != "cpu" and timings[fastest] >= SWITCH_BELOW * timings["cpu"]:
        return "cpu"
    return fastest


def pick_device(device: str, available: Sequence[str],
                measure: Callable[[list[str]], Mapping[str, float]]) -> str:
    """The device a model runs on: ``cpu`` or ``cuda``.

    ``available`` is onnxruntime's provider list (``onnxruntime.get_available_providers()``);
    ``measure(devices)`` returns the median seconds per step on each of ``devices`` (it may
    leave out a device that failed to start). ``auto`` measures only when more than the CPU
    is available and keeps the faster device (:func:`choose_device`), logging the figures
    once at info level; with only the CPU it measures nothing. ``cuda`` without CUDA support
    warns and runs on the CPU.
    """
    if device not in DEVICES:
        raise JamError(f"unknown device {device!r}; use one of {', '.join(DEVICES)}")
    has_cuda = _CUDA in available
    if device == "cuda" and not has_cuda:
        log.warning("CUDA was requested but onnxruntime has no CUDA support here "
                    "(install onnxruntime-gpu and a CUDA driver); running on CPU")
    if device != "auto":
        return "cuda" if device == "cuda" and has_cuda else "cpu"
    if not has_cuda:
        log.debug("device auto: onnxruntime offers only the CPU here; using cpu")
        return "cpu"
    timings = dict(measure(["cpu", "cuda"]))
    if not timings:
        return "cpu"
    chosen = choose_device(timings)
    figures = ", ".join(f"{name} {seconds * 1e6:.0f} us" for name, seconds in timings.items())
    log.info("device auto: median model step %s (%d steps each); using %s",
             figures, TIMING_STEPS, chosen)
    return chosen


def time_step(model: Model, steps: int = TIMING_STEPS, warmup: int = 30) -> float:
    """Median seconds per :meth:`Model.step` over ``steps`` steps after a warm-up, from the
    zero state (the model is reset afterwards)."""
    model.reset()
    tokens = [i % tk.BOS for i in range(warmup + steps)]
    times = []
    for i, token in enumerate(tokens):
        start = time.perf_counter_ns()
        model.step(token)
        if i >= warmup:
            times.append(time.perf_counter_ns() - start)
    model.reset()
    return float(np.median(times)) * 1e-9


class Model:
    """A loaded jam model with its LSTM state kept inside (batch 1).

    :meth:`step` costs one ONNX run on a reused input feed (plain ``run`` measured about twice
    as fast as IOBinding here at this size); :meth:`prime` runs a whole window at once. Both
    continue from the current state; :meth:`reset` returns to the zero state (tune start).
    """

    def __init__(self, session, metadata: dict[str, str], path: Path) -> None:
        self.session = session
        self.metadata = dict(metadata)
        self.path = path
        shapes = {i.name: i.shape for i in session.get_inputs()}
        self.layers, _, self.hidden = (int(x) for x in shapes["h"])
        self.vocab_size = tk.VOCAB_SIZE
        self.device = "cuda" if session.get_providers()[0] == _CUDA else "cpu"
        self._zeros = np.zeros((self.layers, 1, self.hidden), dtype=np.float32)
        self._token = np.zeros((1, 1), dtype=np.int64)
        self._outputs = list(OUTPUTS)
        self._feed = {"tokens": self._token, "h": self._zeros, "c": self._zeros}

    @property
    def window(self) -> int:
        """Context length the model was trained on (tokens after BOS)."""
        return int(self.metadata.get("jam.train.window", 64))

    def reset(self) -> None:
        self._feed["h"] = self._feed["c"] = self._zeros

    def step(self, token: int) -> np.ndarray:
        """Advance by one token; the logits for the next token."""
        self._token[0, 0] = token
        logits, self._feed["h"], self._feed["c"] = self.session.run(self._outputs, self._feed)
        return logits[0, 0]

    def prime(self, tokens: list[int] | np.ndarray) -> np.ndarray:
        """Advance by a window of tokens in one run; the logits after its last token."""
        window = np.asarray(tokens, dtype=np.int64).reshape(1, -1)
        if window.size == 0:
            raise ValueError("prime needs at least one token")
        feed = {"tokens": window, "h": self._feed["h"], "c": self._feed["c"]}
        logits, self._feed["h"], self._feed["c"] = self.session.run(self._outputs, feed)
        return logits[0, -1]


def make_session(model: str | bytes, device: str = "cpu"):
    """An onnxruntime session tuned for one token at a time (a file path or the model bytes)
    on ``cpu`` or ``cuda`` (``auto`` is resolved by :func:`load_model`)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1  # batch 1, one token: threads cost more than they give
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(model, sess_options=options, providers=_providers(device))


def load_model(path: str | os.PathLike | None = None, device: str = "auto") -> Model:
    """Load a jam model (None: the default model) on ``device`` (auto, cpu or cuda; see
    :func:`pick_device`). JamError, one line, if it is not usable. Logs which model it loaded
    (:func:`describe`) once, at info level: every command that loads a model says so."""
    import onnxruntime as ort

    path = default_model_path() if path is None else Path(path).expanduser()
    if not path.is_file():
        raise JamError(f"{path}: no such model file; pass --model PATH or omit it for the default model")
    _refuse_checkpoint(path)
    opened: dict[str, Model] = {}

    def measure(devices: list[str]) -> dict[str, float]:
        opened.update(open_devices(path, devices))
        return measure_devices(opened)

    chosen = pick_device(device, ort.get_available_providers(), measure)
    model = opened[chosen] if chosen in opened else _open(path, chosen)
    log.info("model: %s", describe(model))
    return model


CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt")


def _refuse_checkpoint(path: Path) -> None:
    """A PyTorch checkpoint (tools/train.py's best.pt) is not a model jam can run: say how to
    export it instead of calling it a truncated ONNX file."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(4)
    except OSError as err:
        raise JamError(f"{path}: cannot read the model ({err.strerror or err})") from None
    # torch.save writes a zip archive (PK..) or, in its legacy format, a pickle (0x80 ...)
    if path.suffix.lower() in CHECKPOINT_SUFFIXES or head.startswith(b"PK\x03\x04") or head[:1] == b"\x80":
        raise JamError(f"{path}: a PyTorch checkpoint, not an ONNX model; export it first: "
                       f"python tools/export_onnx.py {shlex.quote(str(path))} -o "
                       f"~/jam/models/{shlex.quote(path.parent.name or 'mine')}.onnx "
                       "(then --model that file)")


def _metrics(metadata: Mapping[str, str]) -> dict:
    try:
        metrics = json.loads(metadata.get("jam.metrics", "") or "{}")
    except json.JSONDecodeError:
        return {}
    return metrics if isinstance(metrics, dict) else {}


def describe(model: Model) -> str:
    """One line about a loaded model: file, size, network, data sources, held-out bits per
    note from its metadata, device."""
    meta = model.metadata
    size = Path(model.path).stat().st_size if Path(model.path).is_file() else 0
    parts = [f"{size / 1e6:.2f} MB"]
    if meta.get("jam.model.layers") and meta.get("jam.model.hidden"):
        parts.append(f"LSTM {meta['jam.model.layers']}x{meta['jam.model.hidden']}")
    sources = meta.get("jam.data.sources", "").replace(",", ", ")
    parts.append(f"data: {sources}" if sources else "data: not recorded")
    test = _metrics(meta).get("test_bits_per_note")
    parts.append(f"test {test:.3f} bits/note" if isinstance(test, (int, float)) else "no test figure")
    return f"{Path(model.path).name} ({'; '.join(parts)}) on {model.device}"


def model_card(model: Model) -> str:
    """A model's metadata as a readable card (``jam model FILE``)."""
    meta = model.metadata
    metrics = _metrics(meta)
    path = Path(model.path)
    size = path.stat().st_size if path.is_file() else 0
    lines = [f"model       {path} ({size:,} bytes, {size / 1e6:.2f} MB)"]
    if meta.get("jam.model.type"):
        lines.append(f"network     {meta['jam.model.type'].upper()} {meta.get('jam.model.layers', '?')} layers x "
                     f"{meta.get('jam.model.hidden', '?')}, embedding {meta.get('jam.model.embed', '?')}, "
                     f"trained on windows of {meta.get('jam.train.window', '?')} tokens"
                     + (f"; {meta['jam.model.quantized']}" if meta.get("jam.model.quantized") else ""))
    lines.append(f"tokens      {meta.get('jam.representation', '?')}, {meta.get('jam.ticks_per_beat', '?')} "
                 f"ticks per beat, vocabulary {meta.get('jam.vocab_size', '?')}")
    try:
        licences = json.loads(meta.get("jam.data.licences", "") or "{}")
    except json.JSONDecodeError:
        licences = {}
    sources = [s for s in meta.get("jam.data.sources", "").split(",") if s]
    if sources:
        lines.append("data        " + "; ".join(f"{s}: {licences[s]}" if s in licences else s for s in sources))
    if meta.get("jam.data.sha256"):
        lines.append(f"data hash   {meta['jam.data.sha256']}")

    def figure(prefix: str) -> str | None:
        value = metrics.get(f"{prefix}_bits_per_note")
        if not isinstance(value, (int, float)):
            return None
        pitch = metrics.get(f"{prefix}_pitch_bits_per_note")
        notes = metrics.get(f"{prefix}_notes")
        return (f"{value:.3f} bits per note"
                + (f" ({pitch:.3f} pitch only)" if isinstance(pitch, (int, float)) else "")
                + (f" on {notes:,} notes" if isinstance(notes, int) else ""))

    for prefix, label in (("test", "test"), ("valid", "valid")):
        text = figure(prefix)
        if text:
            kind = metrics.get("valid_kind") if prefix == "valid" else None
            lines.append(f"{label:<12}{text}" + (f" ({kind})" if kind else ""))
    if figure("test") or figure("valid"):
        lines.append("            bits per note: how surprised the model is by held-out music, "
                     "lower is better (guessing uniformly: about 16)")
    try:
        config = json.loads(meta.get("jam.train.config", "") or "{}")
    except json.JSONDecodeError:
        config = {}
    trained = []
    if metrics.get("best_epoch") is not None:
        trained.append(f"best epoch {metrics['best_epoch']} of {config.get('epochs', '?')}")
    if metrics.get("steps"):
        trained.append(f"{metrics['steps']:,} steps")
    if config.get("batch"):
        trained.append(f"batch {config['batch']}")
    try:
        seconds = float(meta.get("jam.train.seconds", "") or "nan")
    except ValueError:
        seconds = float("nan")
    if seconds == seconds:
        trained.append(f"{int(seconds // 60)} min {seconds % 60:.0f} s")
    if trained:
        lines.append("training    " + ", ".join(trained))
    if meta.get("jam.train.command"):
        lines.append(f"command     {meta['jam.train.command']}")
    return "\n".join(lines)


def open_devices(path: Path, devices: list[str]) -> dict[str, Model]:
    """The model opened on each device that really runs it (CPU first, so a bad file is
    reported as such); a device other than CPU that fails to start is left out, with a warning."""
    opened = {}
    for name in devices:
        if name == "cpu":
            opened[name] = _open(path, name)
            continue
        try:
            session = make_session(str(path), name)
        except Exception as err:  # the file opened on the CPU: this is the device's failure
            reason = str(err).strip().splitlines()[0][:160] if str(err).strip() else type(err).__name__
            log.warning("device %s left out: %s", name, reason)
            continue
        model = _checked(path, session)
        if model.device == name:  # onnxruntime falls back to the CPU when a provider fails
            opened[name] = model
        else:
            log.warning("device %s left out: onnxruntime ran the model on %s", name, model.device)
    return opened


def measure_devices(models: Mapping[str, Model], steps: int = TIMING_STEPS) -> dict[str, float]:
    """Median seconds per step of each opened model (device name -> seconds)."""
    return {name: time_step(model, steps) for name, model in models.items()}


def _open(path: Path, device: str) -> Model:
    try:
        session = make_session(str(path), device)
    except Exception as err:  # onnxruntime raises several types for bad files
        reason = str(err).strip().splitlines()[0][:160] if str(err).strip() else type(err).__name__
        raise JamError(f"{path}: not a readable ONNX model ({reason}); it may be truncated: "
                       "export or download it again") from None
    return _checked(path, session)


def _checked(path: Path, session) -> Model:
    """The session as a :class:`Model` if it holds a jam model for this representation."""
    metadata = session.get_modelmeta().custom_metadata_map
    if "jam.representation" not in metadata:
        raise JamError(f"{path}: an ONNX model but not a jam model (no jam metadata); "
                       "use a model exported by tools/export_onnx.py")
    expected = tk.metadata()
    wrong = {k: metadata.get(k) for k, v in expected.items() if metadata.get(k) != v}
    if wrong:
        found = ", ".join(f"{k}={v}" for k, v in wrong.items())
        raise JamError(f"{path}: made for another representation ({found}; this jam needs "
                       f"{expected['jam.representation']}); use a model trained for this version")
    names_in = tuple(i.name for i in session.get_inputs())
    names_out = tuple(o.name for o in session.get_outputs())
    if names_in != INPUTS or names_out != OUTPUTS:
        raise JamError(f"{path}: unexpected graph inputs/outputs {names_in} -> {names_out}; "
                       "re-export it with tools/export_onnx.py")
    return Model(session, metadata, path)
