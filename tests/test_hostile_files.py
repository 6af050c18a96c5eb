"""MIDI and WAV files from others are untrusted data: their headers and times are bounded
before anything is allocated from them. Each case runs in a subprocess under a 2 GB address
space limit, so that a regression is a failure, not a swap storm."""

from __future__ import annotations

import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest


def _midi(ticks_per_quarter: int, delta: int) -> bytes:
    """One note whose note-on comes `delta` ticks in (a variable-length quantity)."""
    vlq = [delta & 0x7F]
    delta >>= 7
    while delta:
        vlq.insert(0, 0x80 | (delta & 0x7F))
        delta >>= 7
    track = bytes(vlq) + b"\x90\x3c\x40" + b"\x60\x80\x3c\x00" + b"\x00\xff\x2f\x00"
    return (b"MThd" + struct.pack(">IHHH", 6, 0, 1, ticks_per_quarter)
            + b"MTrk" + struct.pack(">I", len(track)) + track)


def _wav(rate: int, frames: int | None = None) -> bytes:
    data = bytes(200)
    frames = len(data) // 2 if frames is None else frames
    fmt = struct.pack("<HHIIHH", 1, 1, rate, rate * 2, 2, 16)
    return (b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVE" + b"fmt "
            + struct.pack("<I", 16) + fmt + b"data" + struct.pack("<I", frames * 2) + data)


def _flac_claiming(frames: int) -> bytes:
    """A real FLAC of 0.1 s whose STREAMINFO says it holds `frames` (its 36-bit total)."""
    import io

    import numpy as np
    import soundfile

    buffer = io.BytesIO()
    soundfile.write(buffer, np.zeros(800, np.float32), 8000, format="FLAC")
    data = bytearray(buffer.getvalue())
    # "fLaC", a 4-byte block header, then STREAMINFO: the total is the low 36 bits of 18..26.
    packed = int.from_bytes(data[18:26], "big")
    data[18:26] = ((packed & ~((1 << 36) - 1)) | frames).to_bytes(8, "big")
    return bytes(data)


CODE = """
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))
from cadenza.errors import CadenzaError
kind, path = sys.argv[1], sys.argv[2]
try:
    if kind == "notes":
        from cadenza.midi import load_notes
        from cadenza.events import PerformanceCodec
        PerformanceCodec().encode(load_notes(path))
    elif kind == "grid":
        from cadenza.pianoroll import read_grid_midi
        read_grid_midi(open(path, "rb").read(), path)
    elif kind == "meter":
        from cadenza.pianoroll import read_meter
        read_meter(open(path, "rb").read(), path)
    else:
        from cadenza.sound_files import read_sound
        read_sound(path)
except CadenzaError as e:
    print(e)
    sys.exit(2)
print("read")
"""


def _read(kind: str, path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(CODE), kind, str(path)],
                          capture_output=True, text=True, timeout=120)


# A note ~1.3e8 s in (2**28 - 1 ticks at 1 tick a quarter, 120 bpm): weeks of time shifts.
FAR = _midi(1, (1 << 28) - 1)


@pytest.mark.parametrize("kind, content, words", [
    ("notes", FAR, "beyond 3600"),
    ("grid", FAR, "beyond 3600"),
    ("notes", _midi(0, 10), "0 ticks per quarter"),
    ("grid", _midi(0, 10), "0 ticks per quarter"),
    ("meter", _midi(0, 10), "0 ticks per quarter"),
    ("wav", _wav(1), "1 Hz"),
    ("wav", _wav(0), "0 Hz"),
    ("wav", _wav(8000, frames=8000 * 3601), "cut short"),
    ("flac", _flac_claiming((1 << 36) - 1), "frames, over 3600 s"),
])
def test_hostile_file_refused_in_one_line(kind, content, words, tmp_path):
    path = tmp_path / (f"x.{kind}" if kind in ("wav", "flac") else "x.mid")
    path.write_bytes(content)
    result = _read(kind, path)
    assert result.returncode == 2, result.stdout + result.stderr
    line = result.stdout.strip()
    assert "\n" not in line and str(path) in line and words in line, line


@pytest.mark.parametrize("kind, content", [
    ("notes", _midi(480, 960)), ("grid", _midi(480, 960)), ("wav", _wav(16000)),
    ("flac", _flac_claiming(800))])
def test_ordinary_file_still_read(kind, content, tmp_path):
    path = tmp_path / (f"x.{kind}" if kind in ("wav", "flac") else "x.mid")
    path.write_bytes(content)
    result = _read(kind, path)
    assert result.returncode == 0 and "read" in result.stdout, result.stdout + result.stderr
