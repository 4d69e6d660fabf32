"""``run.py``'s CPU torchaudio step: the copied wheel leaves out exactly the compiled
extension, in the archive and in its RECORD, and keeps everything else byte for byte.

(That the step works on a real install is shown by every diarization test: without it,
``import pyannote.audio`` fails on a CPU torch.)"""

from __future__ import annotations

import zipfile
from pathlib import Path

import run

FILES = {
    "torchaudio/__init__.py": b"from . import _extension\n",
    "torchaudio/lib/__init__.py": b"",
    "torchaudio/lib/_torchaudio.abi3.so": b"\x7fELF cuda-linked",
    "torchaudio/lib/libtorchaudio.abi3.so": b"\x7fELF cuda-linked",
    "torchaudio/compliance/kaldi.py": b"def fbank(): ...\n",
}


def test_wheel_copy_drops_only_the_extension(tmp_path: Path) -> None:
    source = tmp_path / "torchaudio-2.11.0-cp311-cp311-manylinux_2_28_x86_64.whl"
    record = "".join(f"{name},sha256=x,{len(data)}\n" for name, data in FILES.items())
    with zipfile.ZipFile(source, "w") as wheel:
        for name, data in FILES.items():
            wheel.writestr(name, data)
        wheel.writestr("torchaudio-2.11.0.dist-info/RECORD",
                       record + "torchaudio-2.11.0.dist-info/RECORD,,\n")
    target = tmp_path / "out" / source.name
    target.parent.mkdir()
    run._copy_wheel_without_extension(source, target)

    with zipfile.ZipFile(target) as wheel:
        names = set(wheel.namelist())
        kept = {name for name in FILES if not name.endswith(".so")}
        assert names == kept | {"torchaudio-2.11.0.dist-info/RECORD"}
        for name in kept:
            assert wheel.read(name) == FILES[name]
        recorded = [line.split(",")[0] for line in
                    wheel.read("torchaudio-2.11.0.dist-info/RECORD").decode().splitlines()]
    assert set(recorded) == kept | {"torchaudio-2.11.0.dist-info/RECORD"}
