"""Offline rendering of note arrays: a WAV through a SoundFont, and a piano-roll picture.

For demos, reports and listening tests, not for the live engine. tinysoundfont and
matplotlib are imported inside the functions, so the runtime imports this module
without them (they come with `pip install cadenza[render]`).
"""

from __future__ import annotations

import math
import os
import wave
from pathlib import Path

import numpy as np

from cadenza.errors import CadenzaError
from cadenza.notes import DRUM_CHANNEL

SOUNDFONT_ENV = "CADENZA_SOUNDFONT"
# Debian's General MIDI SoundFonts: timgm6mb-soundfont (6 MB), fluid-soundfont-gm (140 MB);
# default-GM.sf2 is the alternatives link either package installs.
SYSTEM_SOUNDFONTS = (
    Path("/usr/share/sounds/sf2/TimGM6mb.sf2"),
    Path("/usr/share/sounds/sf2/FluidR3_GM.sf2"),
    Path("/usr/share/sounds/sf2/default-GM.sf2"),
)


def find_soundfont(explicit: str | Path | None = None) -> Path:
    """The SoundFont to render with: `explicit`, else $CADENZA_SOUNDFONT, else a system one.

    A path that was asked for by name (argument or environment) must exist: falling back
    to another SoundFont would hide a typo."""
    for given, where in ((explicit, "soundfont"), (os.environ.get(SOUNDFONT_ENV), SOUNDFONT_ENV)):
        if given:
            path = Path(given).expanduser()
            if not path.is_file():
                raise CadenzaError(f"{where}: {path}: no such SoundFont file")
            return path
    for path in SYSTEM_SOUNDFONTS:
        if path.is_file():
            return path
    searched = ", ".join(str(p) for p in SYSTEM_SOUNDFONTS)
    raise CadenzaError(
        f"no SoundFont found (looked at ${SOUNDFONT_ENV}, {searched}); install one with "
        f"`apt-get install timgm6mb-soundfont` or pass a .sf2 path"
    )


def load_synth(soundfont: str | Path | None, sample_rate: int, *, program: int = 0):
    """A tinysoundfont Synth with a General MIDI SoundFont loaded: `program` (0-based GM) on
    every channel, the drum kit on channel 10. Shared by offline rendering and `live --synth`."""
    try:
        import tinysoundfont
    except ImportError:
        raise CadenzaError("playing a SoundFont needs tinysoundfont: "
                           "pip install --no-deps tinysoundfont") from None
    path = find_soundfont(soundfont)
    synth = tinysoundfont.Synth(samplerate=sample_rate)
    try:
        sfid = synth.sfload(str(path))
    except Exception as e:  # tinysoundfont raises its own exception types for a bad file
        raise CadenzaError(f"{path}: cannot load SoundFont ({e})") from None
    for channel in range(16):
        drums = channel == DRUM_CHANNEL
        try:
            synth.program_select(channel, sfid, 0, 0 if drums else program, is_drums=drums)
        except RuntimeError as e:
            raise CadenzaError(f"{path}: no program {program} in this SoundFont ({e})") from None
    return synth


def _note_events(notes: np.ndarray, sample_rate: int) -> list[tuple[int, int, int, int, int]]:
    """(sample, kind, channel, pitch, velocity) with kind 0 = off, 1 = on: at one sample,
    offs come before ons, so a repeated note is struck again rather than cut off."""
    events = []
    for note in notes:
        on = round(float(note["start"]) * sample_rate)
        off = max(round(float(note["end"]) * sample_rate), on + 1)
        channel, pitch = int(note["channel"]), int(note["pitch"])
        events.append((on, 1, channel, pitch, int(note["velocity"])))
        events.append((off, 0, channel, pitch, 0))
    events.sort()
    return events


def render_audio(
    notes: np.ndarray,
    *,
    soundfont: str | Path | None = None,
    program: int = 0,
    sample_rate: int = 44100,
    tail_seconds: float = 1.0,
) -> np.ndarray:
    """The notes played through a General MIDI SoundFont: float32 samples, shape (n, 2).

    Channel 10 plays the drum kit; every other channel plays `program` (0-based GM)."""
    synth = load_synth(soundfont, sample_rate, program=program)

    events = _note_events(notes, sample_rate)
    last = max((e[0] for e in events), default=0)
    total = last + math.ceil(tail_seconds * sample_rate)
    out = np.zeros((total, 2), dtype=np.float32)
    # One noteoff per note, even where two notes overlap on one key (a unison between
    # voices): tinysoundfont's noteoff releases only the earliest voice still held on
    # that key, so each note ends when it should and none is left sounding.
    done = 0
    for sample, kind, channel, pitch, velocity in events:
        if sample > done:
            chunk = synth.generate(sample - done)
            out[done:sample] = np.frombuffer(chunk, dtype=np.float32).reshape(-1, 2)
            done = sample
        if kind == 1:
            synth.noteon(channel, pitch, velocity)
        else:
            synth.noteoff(channel, pitch)
    if total > done:
        out[done:] = np.frombuffer(synth.generate(total - done), dtype=np.float32).reshape(-1, 2)
    return out


def write_wav(samples: np.ndarray, path: str | Path, sample_rate: int = 44100) -> Path:
    """Float samples in [-1, 1], shape (n, channels), as a 16-bit PCM WAV; louder is clipped."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    samples = np.atleast_2d(samples.T).T  # mono (n,) -> (n, 1)
    pcm = np.round(np.clip(samples, -1.0, 1.0) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(pcm.shape[1])
        wav.setsampwidth(2)
        wav.setframerate(sample_rate)
        wav.writeframes(pcm.tobytes())
    return path


def render_wav(
    notes: np.ndarray,
    path: str | Path,
    *,
    soundfont: str | Path | None = None,
    program: int = 0,
    sample_rate: int = 44100,
    tail_seconds: float = 1.0,
) -> Path:
    """Render the notes to a 16-bit stereo WAV at `path`; see `render_audio`."""
    audio = render_audio(
        notes, soundfont=soundfont, program=program, sample_rate=sample_rate,
        tail_seconds=tail_seconds,
    )
    return write_wav(audio, path, sample_rate)


NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
WHITE_KEYS = {0, 2, 4, 5, 7, 9, 11}


def pitch_name(pitch: int) -> str:
    """Scientific pitch notation, middle C (60) = C4."""
    return f"{NOTE_NAMES[pitch % 12]}{pitch // 12 - 1}"


def plot_piano_roll(
    notes: np.ndarray, path: str | Path, *, split_at: float | None = None, title: str = ""
) -> Path:
    """A piano-roll PNG: time across, pitch up, velocity as colour; a line at `split_at`
    marks where the primer ends and the continuation begins."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.collections import PolyCollection
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure

    # Figure and FigureCanvasAgg rather than pyplot: no global state, no GUI backend.
    fig = Figure(figsize=(12, 5), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    end = max(float(notes["end"].max()) if len(notes) else 0.0, split_at or 0.0, 1.0)
    low, high = (int(notes["pitch"].min()), int(notes["pitch"].max())) if len(notes) else (60, 72)
    low, high = max(low - 2, 0), min(high + 2, 127)

    if split_at is not None:
        ax.axvspan(0, split_at, color="0.93", zorder=0)
        ax.axvline(split_at, color="crimson", linestyle="--", linewidth=1.5, zorder=3)
        label = {"fontsize": 10, "va": "bottom", "transform": ax.get_xaxis_transform()}
        ax.text(split_at / 2, 1.01, "primer", ha="center", color="0.3", **label)
        ax.text((split_at + end) / 2, 1.01, "continuation", ha="center", color="crimson", **label)

    boxes = [
        [(s, p - 0.4), (e, p - 0.4), (e, p + 0.4), (s, p + 0.4)]
        for s, e, p in zip(notes["start"], notes["end"], notes["pitch"], strict=True)
    ]
    norm = Normalize(0, 127)
    rolls = PolyCollection(
        boxes, array=notes["velocity"].astype(float), cmap="viridis", norm=norm,
        edgecolors="0.15", linewidths=0.4, zorder=2,
    )
    ax.add_collection(rolls)
    fig.colorbar(rolls, ax=ax, label="velocity", pad=0.01, aspect=30)

    ax.set_xlim(0, end * 1.01)
    ax.set_ylim(low - 0.5, high + 0.5)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("pitch")
    # Name every white key when the range is small enough to read them, else every C.
    named = WHITE_KEYS if high - low <= 26 else {0}
    ticks = [p for p in range(low, high + 1) if p % 12 in named]
    ax.set_yticks(ticks, [pitch_name(p) for p in ticks])
    ax.set_yticks(range(low, high + 1), minor=True)
    for c in range(low - low % 12, high + 1, 12):  # octave lines under the notes
        ax.axhline(c - 0.5, color="0.75", linewidth=0.6, zorder=1)
    ax.grid(axis="x", color="0.88", linewidth=0.5, zorder=1)
    if title:
        ax.set_title(title, pad=18 if split_at is not None else 6)

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path


def read_wav(path: str | Path) -> tuple[np.ndarray, int]:
    """(mono float32 samples in [-1, 1], sample rate) of a 16-bit PCM WAV; channels are
    averaged. A missing or unreadable file is a one-line CadenzaError naming it."""
    path = Path(path)
    try:
        with wave.open(str(path), "rb") as wav:
            width, channels, rate = wav.getsampwidth(), wav.getnchannels(), wav.getframerate()
            data = wav.readframes(wav.getnframes())
    except FileNotFoundError:
        raise CadenzaError(f"{path}: no such file") from None
    except (wave.Error, EOFError, OSError) as e:
        raise CadenzaError(f"{path}: not a readable WAV file ({e})") from None
    if width != 2:
        raise CadenzaError(f"{path}: {8 * width}-bit samples; only 16-bit PCM WAV is read")
    samples = np.frombuffer(data, dtype="<i2").reshape(-1, channels).astype(np.float32) / 32768
    return samples.mean(axis=1), rate
