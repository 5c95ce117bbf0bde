"""The installed package must contain every subpackage and the shipped model folder."""

from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[2]


def test_every_subpackage_is_listed_in_pyproject():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    on_disk = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for init in (ROOT / "jam").rglob("__init__.py")
    }
    assert on_disk | {"jam.models"} == listed


def test_import_jam_pulls_no_training_libraries():
    import subprocess
    import sys

    code = (
        "import sys, jam, jam.music.tokens, jam.music.sampling, jam.midi.files, jam.generators.base\n"
        "heavy = [m for m in ('torch', 'music21', 'onnx') if m in sys.modules]\n"
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_the_runtime_and_the_cli_never_import_torch(tmp_path):
    """The PyTorch network (jam.model.network) is for training and export only: loading the
    default model and answering a call through the CLI pulls in no training library."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "import jam.cli, jam.model.runtime, jam.generators.lstm\n"
        "from jam.midi.files import write_midi\n"
        "from jam.music.tokens import Note\n"
        f"call, answer = {str(tmp_path / 'call.mid')!r}, {str(tmp_path / 'answer.mid')!r}\n"
        "write_midi(call, [[Note(60 + 2 * i, 12 * i, 12) for i in range(8)]], bpm=120)\n"
        "assert jam.cli.main(['respond', call, '-o', answer, '--seed', '1']) == 0\n"
        "heavy = [m for m in ('torch', 'music21', 'onnx', 'jam.model.network') if m in sys.modules]\n"
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
    assert (tmp_path / "answer.mid").stat().st_size > 0
