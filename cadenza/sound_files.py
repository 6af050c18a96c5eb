"""Sound files in and out, through libsndfile (the `soundfile` package, whose wheels carry
the library on Linux, macOS and Windows).

Read: any file libsndfile reads (WAV 8/16/24/32-bit or float, AIFF, FLAC, ...), as mono
float32. Files from others are untrusted: the header's rate and length are bounded before
anything is read, samples are decoded in blocks (what is allocated follows what the file
holds, not what its header claims), and a file cut short is refused.

Write: WAV, or AIFF for a `.aif`/`.aiff` name, at 16 or 24 bits or as 32-bit float.
`soundfile` and numpy are imported inside the functions: the CLI's parsers take BIT_DEPTHS
from here, and `cadenza --help` loads neither.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from cadenza.atomic import atomic_path
from cadenza.errors import CadenzaError

if TYPE_CHECKING:
    import numpy as np

MIN_RATE, MAX_RATE = 1000, 384_000  # sample rates a read file may have (Hz)
MAX_SECONDS = 3600.0  # the longest file read (at its rate): an hour
# --bit-depth: the libsndfile subtype written for each choice.
BIT_DEPTHS = {"16": "PCM_16", "24": "PCM_24", "float": "FLOAT"}
# Integer depths: full scale, and the left shift that puts it in the top bits of an int32
# (how soundfile hands integers to a 24-bit file).
_FULL_SCALE = {"16": (32767, 0), "24": (8_388_607, 8)}
AIFF_SUFFIXES = (".aif", ".aiff")
BLOCK_FRAMES = 1 << 16
# libsndfile's header log notes a data chunk longer than the file: "data : 72000 (should be
# 35978)" (WAV), " SSND : ..." (AIFF). Sizes from 0x7FFFFFFF up are the "length unknown"
# placeholders that streaming writers leave, not a sign of a cut.
_CHUNK_SIZE = re.compile(r"^\s*(data|SSND)\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)
_UNKNOWN_LENGTH = 0x7FFFFFFF


def _libsndfile_says(error: Exception) -> str:
    return str(getattr(error, "error_string", "") or error).strip().rstrip(".")


def _cut_short(header_log: str) -> str | None:
    """"N bytes of audio, M in the file" where the header promises more than the file holds."""
    for match in _CHUNK_SIZE.finditer(header_log):
        promised, held = int(match[2]), int(match[3])
        if held < promised < _UNKNOWN_LENGTH:
            return f"its header promises {promised} bytes of audio, the file holds {held}"
    return None


def read_sound(path: str | Path) -> tuple[np.ndarray, int]:
    """(mono float32 samples, sample rate) of a sound file: full scale is [-1, 1] (a float
    file may go past it); channels are averaged.
    A missing, unreadable, corrupt or cut-short file is a one-line CadenzaError naming it."""
    import numpy as np
    import soundfile

    path = Path(path)
    if not path.is_file():
        raise CadenzaError(f"{path}: no such file")
    try:
        with soundfile.SoundFile(str(path)) as sound:
            rate, frames = sound.samplerate, sound.frames
            # The header is untrusted: its rate sizes a resampled copy, its length a read.
            if not MIN_RATE <= rate <= MAX_RATE:
                raise CadenzaError(f"{path}: a sample rate of {rate} Hz; a sound file read "
                                   f"has {MIN_RATE}..{MAX_RATE} Hz")
            if frames > MAX_SECONDS * rate:
                raise CadenzaError(f"{path}: {frames} frames, over {MAX_SECONDS:g} s at "
                                   f"{rate} Hz")
            cut = _cut_short(sound.extra_info)
            if cut is not None:
                raise CadenzaError(f"{path}: cut short: {cut}")
            blocks = [block.mean(axis=1) for block in sound.blocks(
                BLOCK_FRAMES, dtype="float32", always_2d=True)]
    except soundfile.LibsndfileError as e:
        said = _libsndfile_says(e)
        if "SF_INFO struct incomplete" in said:  # how libsndfile refuses a rate of 0
            raise CadenzaError(f"{path}: no usable sample rate in its header (0 Hz?); "
                               f"libsndfile: {said}") from None
        raise CadenzaError(f"{path}: not a readable sound file (libsndfile: {said})") from None
    except (RuntimeError, OSError) as e:  # soundfile's other errors, a read failing midway
        raise CadenzaError(f"{path}: not a readable sound file ({e})") from None
    samples = np.concatenate(blocks) if blocks else np.zeros(0, np.float32)
    return samples.astype(np.float32, copy=False), rate


def write_sound(samples: np.ndarray, path: str | Path, sample_rate: int = 44100,
                bit_depth: str = "16") -> Path:
    """Float samples, shape (n,) or (n, channels), as a WAV (an AIFF for a .aif/.aiff name)
    of `bit_depth` ("16", "24" or "float"), written atomically. Integer depths clip what
    is louder than [-1, 1]; float keeps it, as a DAW would."""
    import numpy as np
    import soundfile

    if bit_depth not in BIT_DEPTHS:
        raise CadenzaError(f"bit depth {bit_depth!r}: one of {', '.join(BIT_DEPTHS)}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    samples = np.asarray(samples, dtype=np.float32)
    if bit_depth != "float":
        # Rounded here: libsndfile's own float-to-integer conversion truncates (a bias of
        # half a step) and wraps what is past full scale round to the other sign.
        scale, shift = _FULL_SCALE[bit_depth]
        pcm = np.round(np.clip(samples, -1.0, 1.0) * scale).astype(np.int32) << shift
        samples = pcm.astype(np.int16) if bit_depth == "16" else pcm
    container = "AIFF" if path.suffix.lower() in AIFF_SUFFIXES else "WAV"
    with atomic_path(path) as tmp:
        soundfile.write(str(tmp), samples, sample_rate, subtype=BIT_DEPTHS[bit_depth],
                        format=container)
    return path
