"""The installed package must contain every subpackage and the shipped model folder."""

import tomllib
from pathlib import Path

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
