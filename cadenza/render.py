"""Offline rendering of note arrays: a WAV through a SoundFont, and a piano-roll picture.

For demos, reports and listening tests, not for the live engine. tinysoundfont and
matplotlib are imported inside the functions, so the runtime imports this module
without them (they come with `pip install cadenza[render]`).
"""

from __future__ import annotations

import importlib.util
import math
import os
import sys
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from cadenza.errors import CadenzaError
from cadenza.extras import MissingExtra
from cadenza.notes import DRUM_CHANNEL
from cadenza.sound_files import write_sound

SOUNDFONT_ENV = "CADENZA_SOUNDFONT"
# Preferred by name inside a folder that holds several: General MIDI banks, smallest first.
GM_NAMES = ("TimGM6mb.sf2", "FluidR3_GM.sf2", "GeneralUser GS v1.471.sf2", "default-GM.sf2",
            "default.sf2")
# Debian's General MIDI SoundFonts: timgm6mb-soundfont (6 MB), fluid-soundfont-gm (140 MB);
# default-GM.sf2 is the alternatives link either package installs.
SYSTEM_SOUNDFONTS = (
    Path("/usr/share/sounds/sf2/TimGM6mb.sf2"),
    Path("/usr/share/sounds/sf2/FluidR3_GM.sf2"),
    Path("/usr/share/sounds/sf2/default-GM.sf2"),
)
INSTALL_HINTS = {
    "linux": "apt-get install timgm6mb-soundfont (or your distribution's fluid-soundfont-gm)",
    "darwin": "brew install fluid-synth, or put a .sf2 in ~/Library/Audio/Sounds/Banks",
    "win32": r"put a .sf2 in %USERPROFILE%\SoundFonts",
}


def _platform_key(platform: str) -> str:
    if platform.startswith("linux"):
        return "linux"
    if platform.startswith(("win", "cygwin")):
        return "win32"
    return platform


def soundfont_places(
    platform: str | None = None, env: Mapping[str, str] | None = None
) -> list[Path]:
    """Where a SoundFont is looked for, in order: .sf2 files, or folders whose .sf2 files are
    taken (a General MIDI name first). `platform` and `env` default to this machine's."""
    platform = _platform_key(sys.platform if platform is None else platform)
    env = os.environ if env is None else env
    home = Path(env.get("HOME") or env.get("USERPROFILE") or Path.home())
    places: list[Path] = []
    if platform == "win32":
        profile = Path(env.get("USERPROFILE") or home)
        places += [profile / "SoundFonts", profile / "Documents" / "SoundFonts"]
        places += [Path(env[var]) / "cadenza" / "soundfonts"
                   for var in ("APPDATA", "LOCALAPPDATA") if env.get(var)]
        places += [Path(env[var]) / "SoundFonts"
                   for var in ("APPDATA", "ProgramData") if env.get(var)]
        # %WINDIR%\System32\drivers\gm.dls is a DLS bank, which tinysoundfont cannot read.
    elif platform == "darwin":
        places += [
            home / "Library" / "Audio" / "Sounds" / "Banks",
            Path("/Library/Audio/Sounds/Banks"),
            home / "Library" / "Application Support" / "cadenza" / "soundfonts",
            # Homebrew (Apple silicon, then Intel) and MacPorts; fluid-synth's own small bank.
            Path("/opt/homebrew/share/soundfonts"),
            Path("/usr/local/share/soundfonts"),
            Path("/opt/local/share/sounds/sf2"),
            Path("/opt/homebrew/share/fluid-synth/sf2"),
            Path("/usr/local/share/fluid-synth/sf2"),
        ]
    else:
        data_home = Path(env.get("XDG_DATA_HOME") or home / ".local" / "share")
        places += [*SYSTEM_SOUNDFONTS, Path("/usr/share/soundfonts"),
                   Path("/usr/local/share/soundfonts"), data_home / "soundfonts",
                   data_home / "sounds" / "sf2", data_home / "cadenza" / "soundfonts"]
    # Everywhere: the package's own data, this environment's share/, pretty_midi's bundled one.
    places += [Path(__file__).parent / "data" / "soundfonts",
               Path(sys.prefix) / "share" / "cadenza" / "soundfonts"]
    bundled = _pretty_midi_soundfont()
    if bundled is not None:
        places.append(bundled)
    return places


def _pretty_midi_soundfont() -> Path | None:
    """pretty_midi ships TimGM6mb.sf2; found without importing it (that is slow)."""
    try:
        spec = importlib.util.find_spec("pretty_midi")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "TimGM6mb.sf2"


def _soundfont_in(place: Path) -> Path | None:
    if place.is_file():
        return place
    if not place.is_dir():
        return None
    try:
        found = sorted(p for p in place.iterdir() if p.suffix.lower() == ".sf2" and p.is_file())
    except OSError:  # unreadable folder
        return None
    by_name = {p.name: p for p in found}
    return next((by_name[n] for n in GM_NAMES if n in by_name), found[0] if found else None)


def find_soundfont(
    explicit: str | Path | None = None,
    *,
    platform: str | None = None,
    env: Mapping[str, str] | None = None,
) -> Path:
    """The SoundFont to render with: `explicit` (--soundfont), else $CADENZA_SOUNDFONT, else
    the first found in soundfont_places().

    A path that was asked for by name (argument or environment) must exist: falling back
    to another SoundFont would hide a typo."""
    env = os.environ if env is None else env
    for given, where in ((explicit, "--soundfont"), (env.get(SOUNDFONT_ENV), SOUNDFONT_ENV)):
        if given:
            path = Path(given).expanduser()
            if not path.is_file():
                raise CadenzaError(f"{where}: {path}: no such SoundFont file")
            return path
    places = soundfont_places(platform, env)
    for place in places:
        found = _soundfont_in(place)
        if found is not None:
            return found
    hint = INSTALL_HINTS.get(_platform_key(sys.platform if platform is None else platform), "")
    raise CadenzaError(
        f"no SoundFont (.sf2) found; looked in {', '.join(str(p) for p in places)}. "
        f"Point at one with --soundfont FILE.sf2 or the {SOUNDFONT_ENV} variable"
        + (f", or {hint}" if hint else "")
        + " (pip install pretty_midi brings TimGM6mb.sf2)"
    )


Programs = int | Mapping[int, int]  # one General MIDI program for every channel, or by channel


def load_synth(soundfont: str | Path | None, sample_rate: int, *, program: Programs = 0):
    """A tinysoundfont Synth with a General MIDI SoundFont loaded: `program` (0-based GM) on
    every channel, the drum kit on channel 10. Shared by offline rendering and `live --synth`."""
    try:
        import tinysoundfont
    except ImportError:
        raise MissingExtra("playing a SoundFont", "tinysoundfont") from None
    path = find_soundfont(soundfont)
    synth = tinysoundfont.Synth(samplerate=sample_rate)
    try:
        sfid = synth.sfload(str(path))
    except Exception as e:  # tinysoundfont raises its own exception types for a bad file
        raise CadenzaError(f"{path}: cannot load SoundFont ({e})") from None
    for channel in range(16):
        drums = channel == DRUM_CHANNEL
        try:
            chosen = program.get(channel, 0) if isinstance(program, Mapping) else program
            synth.program_select(channel, sfid, 0, 0 if drums else chosen, is_drums=drums)
        except RuntimeError as e:
            raise CadenzaError(f"{path}: no program {chosen} in this SoundFont ({e})") from None
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
    program: Programs = 0,
    sample_rate: int = 44100,
    tail_seconds: float = 1.0,
) -> np.ndarray:
    """The notes played through a General MIDI SoundFont: float32 samples, shape (n, 2).

    Channel 10 plays the drum kit; every other channel plays `program` (0-based GM; a
    mapping gives each channel its own, 0 for a channel it leaves out)."""
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


def render_wav(
    notes: np.ndarray,
    path: str | Path,
    *,
    soundfont: str | Path | None = None,
    program: Programs = 0,
    sample_rate: int = 44100,
    tail_seconds: float = 1.0,
    bit_depth: str = "16",
) -> Path:
    """Render the notes to a stereo WAV (AIFF for a .aif/.aiff name) at `path`, of
    `bit_depth` "16", "24" or "float"; see `render_audio` and `sound_files.write_sound`."""
    audio = render_audio(
        notes, soundfont=soundfont, program=program, sample_rate=sample_rate,
        tail_seconds=tail_seconds,
    )
    return write_sound(audio, path, sample_rate, bit_depth)


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
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.collections import PolyCollection
        from matplotlib.colors import Normalize
        from matplotlib.figure import Figure
    except ImportError:
        raise MissingExtra("drawing a piano roll", "matplotlib") from None

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
