#!/usr/bin/env python3
"""Export a training checkpoint (tools/train.py) to one self-contained jam ONNX model.

    python tools/export_onnx.py ~/jam/runs/mine/best.pt -o ~/jam/models/mine.onnx --data ~/jam/data/mine
    python tools/export_onnx.py runs/default/best.pt -o models/default.onnx [--quantize int8]

One graph, ``tokens[1, T] int64, h[L, 1, H], c[L, 1, H] -> logits[1, T, V], h_out, c_out``
with a dynamic T: T = 1 steps the live model, T = N primes a window (see jam/model/runtime.py).
The model's ``metadata_props`` carry the representation, model sizes, data sources, training
command and metrics. Before writing, the exporter checks parity on random sequences (ONNX
stepwise and ONNX primed vs PyTorch on the whole sequence, max abs diff on logits <= 1e-4)
and refuses to write a model that fails; it prints the file size and the per-step latency.
``--quantize int8`` applies onnxruntime dynamic quantization and reports its parity and speed
(informational: int8 cannot meet 1e-4). Never overwrites without --force; creates the
output's folder; never writes into the ``--data`` folder.
"""

from __future__ import annotations

import io
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
import torch

from benchparts.model import step_latency  # tools/ is on sys.path when a tool runs
from jam.errors import JamError
from jam.fileio import atomic_write_bytes
from jam.model.network import model_from_config
from jam.model.runtime import INPUTS, OUTPUTS, Model, make_session
from jam.music import tokens as tk
from toolcli import Parser, nonempty_path, refuse_inside

PARITY_LIMIT = 1e-4
LICENCES = {
    "oneills1850": "public domain (O'Neill, 1850)",
    "ryansMammoth": "public domain (Ryan, 1883)",
    "airdsAirs": "public domain (Aird, 1782-1803)",
    "bach": "public domain (J. S. Bach chorales)",
    "essenFolksong": "non-commercial only",
}


class Stepper(torch.nn.Module):
    """The exported signature: explicit state in, logits and state out."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, tokens: torch.Tensor, h: torch.Tensor, c: torch.Tensor):
        return self.model(tokens, h, c)


def load_checkpoint(path: Path) -> dict:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise JamError(f"{path}: no such checkpoint; train one with tools/train.py") from None
    except Exception as err:
        raise JamError(f"{path}: not a readable checkpoint ({type(err).__name__}); "
                       "give a best.pt/last.pt written by tools/train.py") from None


def metadata_for(checkpoint: dict) -> dict[str, str]:
    config, data = checkpoint["config"], checkpoint.get("data", {})
    sources = data.get("sources", [])
    meta = dict(tk.metadata())
    meta.update({
        "jam.model.type": "lstm",
        "jam.model.layers": str(config["layers"]),
        "jam.model.hidden": str(config["hidden"]),
        "jam.model.embed": str(config["embed"]),
        "jam.train.window": str(config["window"]),
        "jam.train.config": json.dumps(config, sort_keys=True),
        "jam.train.command": checkpoint.get("command", ""),
        "jam.train.seconds": str(checkpoint.get("train_seconds", "")),
        "jam.data.sources": ",".join(sources),
        "jam.data.licences": json.dumps({s: LICENCES.get(s, "user data") for s in sources}),
        "jam.data.sha256": data.get("sha256", ""),
        "jam.data.split_seed": str(data.get("split_seed", "")),
        "jam.metrics": json.dumps(checkpoint.get("metrics", {}), sort_keys=True),
    })
    return meta


def export_bytes(model: torch.nn.Module, config: dict, meta: dict[str, str]) -> bytes:
    layers, hidden = config["layers"], config["hidden"]
    example = (torch.zeros(1, 5, dtype=torch.int64), torch.zeros(layers, 1, hidden),
               torch.zeros(layers, 1, hidden))
    buffer = io.BytesIO()
    stepper = Stepper(model).eval()  # a new Module is in training mode: dropout would be on
    torch.onnx.export(stepper, example, buffer, input_names=list(INPUTS),
                      output_names=list(OUTPUTS), dynamic_axes={"tokens": {1: "T"}, "logits": {1: "T"}},
                      opset_version=17, dynamo=False)
    model.eval()  # the exporter restores the wrapper's mode on the way out
    proto = onnx.load_from_string(buffer.getvalue())
    return with_metadata(proto, meta)


def with_metadata(proto: onnx.ModelProto, meta: dict[str, str]) -> bytes:
    del proto.metadata_props[:]
    for key, value in sorted(meta.items()):
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(proto)
    return proto.SerializeToString()


def parity(model: torch.nn.Module, onnx_model: Model, sequences: int = 8, length: int = 64,
           seed: int = 0) -> float:
    """Max abs logit difference, ONNX stepwise and primed vs PyTorch on whole sequences."""
    rng = np.random.default_rng(seed)
    worst = 0.0
    for _ in range(sequences):
        seq = np.concatenate(([tk.BOS], rng.integers(0, tk.BOS, size=length - 1)))
        with torch.no_grad():
            reference = model(torch.from_numpy(seq).view(1, -1))[0][0].numpy()
        onnx_model.reset()
        for t, token in enumerate(seq):
            worst = max(worst, float(np.abs(onnx_model.step(int(token)) - reference[t]).max()))
        onnx_model.reset()
        worst = max(worst, float(np.abs(onnx_model.prime(seq) - reference[-1]).max()))
    return worst


def held_out(onnx_model: Model, data: Path) -> dict[str, float]:
    """Test-split figures of the exported model through the runtime (full softmax, no grammar
    renormalization: the definition tools/train.py reports)."""
    from jam import dataset
    from jam.evaluation.likelihood import corpus_likelihood
    from jam.generators.lstm import LstmGenerator

    tunes = [t.tokens for t in dataset.read_split(data, "test")]
    summary = corpus_likelihood(LstmGenerator(onnx_model), tunes, grammar=False).summary()
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in summary.items()}


def quantize_int8(data: bytes, meta: dict[str, str]) -> bytes:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory() as folder:
        src, dst = Path(folder) / "fp32.onnx", Path(folder) / "int8.onnx"
        src.write_bytes(data)
        quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8)
        return with_metadata(onnx.load(str(dst)), meta)


def build_parser() -> Parser:
    parser = Parser(prog="export_onnx.py", description=__doc__.split("\n\n")[0] + "\n\n"
                    + __doc__.split("\n\n")[1])
    parser.add_argument("checkpoint", type=nonempty_path, help="best.pt or last.pt from tools/train.py")
    parser.add_argument("-o", "--output", type=nonempty_path, required=True, metavar="FILE",
                        help="ONNX file to write (its folder is created); keep your models "
                             "outside the repository, e.g. ~/jam/models/mine.onnx")
    parser.add_argument("--quantize", choices=("int8",), default=None,
                        help="also quantize to int8 (onnxruntime dynamic) and write that")
    parser.add_argument("--force", action="store_true", help="replace an existing output file")
    parser.add_argument("--data", type=nonempty_path, default=None, metavar="DIR",
                        help="also report test-split bits per note of the ONNX model(s)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.data is not None:
            refuse_inside(args.output, [args.data], "export_onnx", "-o")
        if args.output.exists() and not args.force:
            raise JamError(f"{args.output} already exists; choose another name or pass --force to replace it")
        checkpoint = load_checkpoint(args.checkpoint)
        config = checkpoint["config"]
        model = model_from_config(config)
        model.load_state_dict(checkpoint["model"])
        model.eval()
        meta = metadata_for(checkpoint)
        data = export_bytes(model, config, meta)
        fp32 = Model(make_session(data, "cpu"), meta, args.output)
        diff = parity(model, fp32)
        report = {"parity_max_abs_diff": diff, "fp32_bytes": len(data), "fp32_latency": step_latency(fp32)}
        if diff > PARITY_LIMIT:
            raise JamError(f"parity check failed: ONNX differs from PyTorch by {diff:.2e} "
                           f"(> {PARITY_LIMIT:.0e}); the model was not written")
        if args.data:
            report["fp32_test"] = held_out(fp32, args.data)
        if args.quantize == "int8":
            meta["jam.model.quantized"] = "int8 (onnxruntime dynamic)"
            data = quantize_int8(data, meta)
            int8 = Model(make_session(data, "cpu"), meta, args.output)
            diff = parity(model, int8)
            report.update({"int8_parity_max_abs_diff": diff, "int8_bytes": len(data),
                           "int8_latency": step_latency(int8)})
            if args.data:
                report["int8_test"] = held_out(int8, args.data)
        args.output.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(args.output, data, overwrite=args.force)
    except JamError as err:
        print(f"export_onnx: {err}", file=sys.stderr)
        return 2
    size = args.output.stat().st_size
    step = report.get("int8_latency", report["fp32_latency"])
    print(f"wrote {args.output}: {size / 1e6:.2f} MB, parity max abs diff {diff:.1e}, "
          f"step latency p50 {step['p50_us']} us, p99 {step['p99_us']} us")
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
