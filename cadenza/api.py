"""Cadenza from Python: load a model by name, continue a phrase, keep the result.

    import cadenza
    model = cadenza.load("transformer")          # a kind's shipped bundle, a folder or a .zip
    music = model.continue_("phrase.mid", bars=4, temperature=0.9, seed=1)
    music.to_midi("answer.mid")

The same generators the CLI and the live engine use (cadenza.plugins), with the knobs named
as MusicGen's `set_generation_params` names them where they mean the same (temperature,
top_k, top_p). Results are `Music` (notes, and how to write them) or, for codec-lm, a numpy
array of samples and its sample rate.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mido
import numpy as np

from cadenza.errors import CadenzaError
from cadenza.generate import backing_parts, continue_primer, vae_phrases
from cadenza.midi import load_notes, notes_to_midi
from cadenza.notes import empty_notes
from cadenza.pianoroll import read_meter
from cadenza.plugins import AudioGenerator, BackingGenerator, EventGenerator, load_generator
from cadenza.plugins.base import Generator
from cadenza.plugins.sampling import Knobs
from cadenza.plugins.vae import SegmentVAE
from cadenza.render import render_wav
from cadenza.sound_files import read_sound

DEFAULT_BPM = 120.0
Primer = str | Path | np.ndarray | None  # a MIDI file, a note array (cadenza.notes), nothing


@dataclass
class Music:
    """Notes (a cadenza.notes array: start and end in seconds, pitch, velocity, channel),
    the primer's share of them, and the tempo they are written at."""

    notes: np.ndarray
    primer_seconds: float = 0.0
    bpm: float = DEFAULT_BPM
    program: int = 0  # the General MIDI program of every channel but the drums'

    @property
    def seconds(self) -> float:
        return float(self.notes["end"].max()) if len(self.notes) else 0.0

    def to_mido(self) -> mido.MidiFile:
        return notes_to_midi(self.notes, program=self.program, bpm=self.bpm)

    def to_midi(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.to_mido().save(path)
        return path

    def to_wav(self, path: str | Path, *, soundfont: str | Path | None = None) -> Path:
        """Rendered through a General MIDI SoundFont (`pip install 'cadenza[render]'`)."""
        return render_wav(self.notes, path, soundfont=soundfont, program=self.program)


class Model:
    """A loaded bundle and its generator (`.generator`, for what this class does not wrap)."""

    def __init__(self, generator: Generator):
        self.generator = generator

    @property
    def kind(self) -> str:
        return self.generator.plugin

    @property
    def name(self) -> str:
        return self.generator.bundle.name

    @property
    def styles(self) -> list[str]:
        return self.generator.styles

    def __repr__(self) -> str:
        return f"<cadenza.Model {self.kind} {self.name!r} from {self.generator.bundle.path}>"

    def set_generation_params(self, *, temperature: float | None = None,
                              top_k: int | None = None, top_p: float | None = None,
                              seed: int | None = None, style: str | None = None,
                              cfg_coef: float | None = None,
                              max_voices: int | None = None) -> None:
        """The knobs from now on; None leaves one as it is. `cfg_coef`: codec-lm's guidance.
        `max_voices`: notes sounding at once (1: monophonic, 0: no limit; event models)."""
        knobs = self.generator.knobs
        try:
            self.generator.knobs = Knobs(
                temperature=knobs.temperature if temperature is None else temperature,
                top_k=knobs.top_k if top_k is None else top_k,
                top_p=knobs.top_p if top_p is None else top_p,
                max_voices=knobs.max_voices if max_voices is None else max_voices,
            )
        except ValueError as e:
            raise CadenzaError(f"generation params: {e}") from None
        if seed is not None:
            self.generator.seed(seed)
        if style is not None:
            self.generator.set_style(style)
        if cfg_coef is not None:
            if not isinstance(self.generator, AudioGenerator):
                raise CadenzaError(f"cfg_coef: {self.kind} has no guidance (codec-lm has)")
            if cfg_coef < 0:
                raise CadenzaError(f"cfg_coef: must be >= 0, got {cfg_coef}")
            self.generator.cfg = cfg_coef

    # --- symbolic music -------------------------------------------------------------------
    def continue_(self, primer: Primer = None, *, seconds: float | None = None,
                  bars: float | None = None, bpm: float | None = None,
                  **params: Any) -> Music:
        """What follows `primer` (the primer included in the result): `seconds` of it, or
        `bars` at `bpm` (default: the primer's first tempo, else 120). A backing model plays
        its parts under the primer's melody instead, for the primer's length."""
        self.set_generation_params(**params)
        tempo, beats_per_bar = _tempo_of(primer, bpm)
        length = _length(seconds, bars, tempo, beats_per_bar)
        generator = self.generator
        if isinstance(generator, BackingGenerator):
            with _as_midi_file(primer, tempo) as path:
                result = backing_parts(generator, path)
        elif isinstance(generator, SegmentVAE):
            with _as_midi_file(primer, tempo) as path:
                result = vae_phrases(generator, "continue" if path else "sample", path, None,
                                     8, length)
        elif isinstance(generator, EventGenerator):
            notes = empty_notes() if primer is None else _notes_of(primer)
            result = continue_primer(generator, notes, length)
        else:
            raise CadenzaError(f"{self.kind} makes audio: use generate_audio")
        return Music(result.notes, result.primer_seconds, tempo)

    def generate(self, *, seconds: float | None = None, bars: float | None = None,
                 bpm: float | None = None, **params: Any) -> Music:
        """Music from nothing (a backing model needs a melody: use continue_)."""
        return self.continue_(None, seconds=seconds, bars=bars, bpm=bpm, **params)

    def interpolate(self, a: str | Path, b: str | Path, *, steps: int = 8,
                    **params: Any) -> Music:
        """vae: `steps` segments from `a` to `b` (MIDI files, or "style:NAME")."""
        generator = self.generator
        if not isinstance(generator, SegmentVAE):
            raise CadenzaError(f"interpolate: {self.kind} has no latent space (the vae has)")
        self.set_generation_params(**params)
        result = vae_phrases(generator, "interpolate", None, [str(a), str(b)], steps, 0.0)
        return Music(result.notes, 0.0, generator.default_bpm)

    # --- audio ----------------------------------------------------------------------------
    def generate_audio(self, prompt: str | None = None, *, seconds: float = 8.0,
                       **params: Any) -> tuple[np.ndarray, int]:
        """codec-lm: (mono float32 samples, sample rate) of what `prompt` describes."""
        return self.continue_audio(None, prompt=prompt, seconds=seconds, **params)

    def continue_audio(self, audio: str | Path | np.ndarray | None,
                       sample_rate: int | None = None, *, prompt: str | None = None,
                       seconds: float = 8.0, **params: Any) -> tuple[np.ndarray, int]:
        """codec-lm: `seconds` of new audio after `audio` (a sound file, or samples at
        `sample_rate`), as `prompt` describes."""
        lm = self.generator
        if not isinstance(lm, AudioGenerator):
            raise CadenzaError(f"{self.kind} makes notes: use continue_ or generate")
        if not seconds > 0:
            raise CadenzaError(f"seconds: must be positive, got {seconds}")
        self.set_generation_params(**params)
        codes = np.zeros((lm.num_codebooks, 0), dtype=np.int64)
        if audio is not None:
            samples, rate = (read_sound(audio) if isinstance(audio, str | Path)
                             else (np.asarray(audio, np.float32), sample_rate))
            if rate != lm.sample_rate:
                raise CadenzaError(f"audio: {rate} Hz, this model makes {lm.sample_rate} Hz")
            codes = lm.encode(samples)
        lm.prime(codes, {"prompt": prompt})
        return lm.generate_audio(seconds), lm.sample_rate


def load(name_or_path: str | Path, *, seed: int | None = None) -> Model:
    """A model: a kind's shipped bundle by name ("transformer", "vae", "codec-lm"...), a
    shipped bundle's folder name ("backing-chords"), a bundle directory or a .zip."""
    return Model(load_generator(name_or_path, seed=seed))


def _notes_of(primer: str | Path | np.ndarray) -> np.ndarray:
    return load_notes(primer) if isinstance(primer, str | Path) else primer


def _tempo_of(primer: Primer, bpm: float | None) -> tuple[float, int]:
    """(quarter notes a minute, beats a bar): `bpm` if given, else the primer file's."""
    if isinstance(primer, str | Path) and Path(primer).is_file():
        meter = read_meter(Path(primer).read_bytes(), primer)
        tempo = 60.0 / float(meter.seconds_per_quarter[0])
        return (bpm or tempo), int(meter.signatures[0][0])
    return (bpm or DEFAULT_BPM), 4


def _length(seconds: float | None, bars: float | None, bpm: float, beats_per_bar: int) -> float:
    if (seconds is None) == (bars is None):
        raise CadenzaError("give seconds= or bars= (one of them)")
    length = seconds if seconds is not None else bars * beats_per_bar * 60.0 / bpm
    if not 0 < length < float("inf"):
        raise CadenzaError(f"length: must be positive, got {length}")
    return length


class _as_midi_file:
    """A primer as a MIDI file's path (a note array is written to a temporary one)."""

    def __init__(self, primer: Primer, bpm: float):
        self.primer, self.bpm, self.folder = primer, bpm, None

    def __enter__(self) -> str | None:
        if self.primer is None or isinstance(self.primer, str | Path):
            return None if self.primer is None else str(self.primer)
        self.folder = tempfile.TemporaryDirectory()
        path = Path(self.folder.name) / "primer.mid"
        notes_to_midi(self.primer, bpm=self.bpm).save(path)
        return str(path)

    def __exit__(self, *exc: object) -> None:
        if self.folder is not None:
            self.folder.cleanup()
