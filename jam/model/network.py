"""The PyTorch network behind a jam model, for training and export (needs torch: the
``train`` extra). The live runtime never imports this module: it runs the exported ONNX
graph (:mod:`jam.model.runtime`).

    from jam.model.network import model_from_config
    model = model_from_config(checkpoint["config"])
    model.load_state_dict(checkpoint["model"])

``tools/train.py`` trains it, ``tools/export_onnx.py`` exports it, the tests compare it with
the ONNX model.
"""

from __future__ import annotations

import torch
from torch import nn


class LstmModel(nn.Module):
    """Embedding -> LSTM -> Linear over the vocabulary; forward returns logits and (h, c)."""

    def __init__(self, vocab: int, embed: int, hidden: int, layers: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, embed)
        self.lstm = nn.LSTM(embed, hidden, layers, batch_first=True,
                            dropout=dropout if layers > 1 else 0.0)
        self.head = nn.Linear(hidden, vocab)

    def forward(self, tokens: torch.Tensor, h: torch.Tensor | None = None, c: torch.Tensor | None = None):
        state = None if h is None else (h, c)
        out, (h_out, c_out) = self.lstm(self.embed(tokens), state)
        return self.head(out), h_out, c_out


def model_from_config(config: dict) -> LstmModel:
    """The network for a checkpoint's ``config`` (the sizes tools/train.py records)."""
    return LstmModel(config["vocab"], config["embed"], config["hidden"], config["layers"],
                     config.get("dropout", 0.0))
