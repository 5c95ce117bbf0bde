"""Load and run an exported jam model with onnxruntime (no torch, no onnx package).

A jam model is one ONNX graph (written by ``tools/export_onnx.py``)::

    tokens[1, T] int64, h[L, 1, H], c[L, 1, H]  ->  logits[1, T, V], h_out, c_out

so the same graph steps one token (T = 1) and primes a window (any T). Its
``metadata_props`` carry the representation (:func:`jam.music.tokens.metadata`) plus model
sizes, data sources, training command and metrics; :func:`load_model` refuses a model whose
representation differs from this jam's. The LSTM state lives inside :class:`Model`.
"""

from __future__ import annotations

import logging
import os
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
    import onnxruntime as ort

    if device not in DEVICES:
        raise JamError(f"unknown device {device!r}; use one of {', '.join(DEVICES)}")
    available = ort.get_available_providers()
    if device == "cpu":
        return [_CPU]
    if _CUDA in available:
        return [_CUDA, _CPU]
    if device == "cuda":
        log.warning("CUDA was requested but onnxruntime has no CUDA support here "
                    "(install onnxruntime-gpu and a CUDA driver); running on CPU")
    return [_CPU]


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
    """An onnxruntime session tuned for one token at a time (a file path or the model bytes)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1  # batch 1, one token: threads cost more than they give
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(model, sess_options=options, providers=_providers(device))


def load_model(path: str | os.PathLike | None = None, device: str = "auto") -> Model:
    """Load a jam model (None: the default model). JamError, one line, if it is not usable."""
    path = default_model_path() if path is None else Path(path)
    if not path.is_file():
        raise JamError(f"{path}: no such model file; pass --model PATH or omit it for the default model")
    try:
        session = make_session(str(path), device)
    except JamError:
        raise
    except Exception as err:  # onnxruntime raises several types for bad files
        reason = str(err).strip().splitlines()[0][:160] if str(err).strip() else type(err).__name__
        raise JamError(f"{path}: not a readable ONNX model ({reason}); it may be truncated: "
                       "export or download it again") from None
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
