"""Which model jam loaded, said in one place (jam.model.runtime.load_model logs it), the card
of ``jam model FILE``, and a PyTorch checkpoint given as a model."""

from __future__ import annotations

import logging
import shutil

import pytest

from jam import cli
from jam.errors import JamError
from jam.model.runtime import default_model_path, describe, load_model, model_card


def test_loading_a_model_logs_its_file_size_data_and_test_figure(caplog):
    with caplog.at_level(logging.INFO, logger="jam.model.runtime"):
        load_model(default_model_path(), device="cpu")
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("model: ")]
    assert len(lines) == 1
    line = lines[0]
    assert "default.onnx (1.11 MB; LSTM 2x128; data: airdsAirs, bach, oneills1850, ryansMammoth;" in line
    assert "test 3.153 bits/note) on cpu" in line


def test_the_card_reads_the_metadata():
    card = model_card(load_model(default_model_path(), device="cpu"))
    assert "LSTM 2 layers x 128, embedding 64" in card
    assert "test        3.153 bits per note (2.353 pitch only) on 44,165 notes" in card
    assert "oneills1850: public domain (O'Neill, 1850)" in card
    assert "lower is better" in card and "best epoch 49 of 50" in card
    assert "python tools/train.py data/pd" in card


def test_a_model_without_metrics_still_describes_itself(tmp_path):
    model = load_model(default_model_path(), device="cpu")
    model.metadata = {k: v for k, v in model.metadata.items() if not k.startswith(("jam.metrics", "jam.data"))}
    assert describe(model).endswith("data: not recorded; no test figure) on cpu")
    assert "test " not in model_card(model)


@pytest.mark.parametrize("name, head", [("best.pt", b"PK\x03\x04rest"), ("model.onnx", b"PK\x03\x04rest"),
                                        ("legacy.bin", b"\x80\x02rest")])
def test_a_pytorch_checkpoint_says_how_to_export_it(tmp_path, name, head):
    path = tmp_path / "runs" / "mine" / name
    path.parent.mkdir(parents=True)
    path.write_bytes(head + bytes(100))
    with pytest.raises(JamError) as err:
        load_model(path, device="cpu")
    message = str(err.value)
    assert "a PyTorch checkpoint, not an ONNX model" in message
    assert f"python tools/export_onnx.py {path} -o ~/jam/models/mine.onnx" in message
    assert "truncated" not in message and "\n" not in message


def test_jam_model_prints_the_card(tmp_path, capsys):
    copy = tmp_path / "mine.onnx"
    shutil.copy(default_model_path(), copy)
    assert cli.main(["model", str(copy)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"model       {copy} (1,105,574 bytes, 1.11 MB)")
    assert cli.main(["model", str(tmp_path / "best.pt")]) == 2  # no such file: one line
    assert cli.main(["model", "--model", "rules"]) == 2
    err = capsys.readouterr().err
    assert "no such model file" in err and "rule-based responder" in err
