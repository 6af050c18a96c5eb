"""One clip of the audio corpus: what plays it (instrument, speed, octave, from a hash of
piece and clip), what its caption says ("a church organ playing a slow Bach chorale in a low
register") and its samples, rendered through a SoundFont and loudness-normalised.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

from cadenza.corpus.common import PieceResult, skip_reason
from cadenza.corpus.sources import Piece, load_notes
from cadenza.notes import stretch, transpose
from cadenza.render import render_audio

# 24 kHz: the rate of EnCodec's music codec, wide enough for the SoundFont's upper harmonics
# (12 kHz), and a hop of 480 samples gives the 50 codec frames per second.
SAMPLE_RATE = 24000
CLIP_SECONDS = 4.0
CLIPS_PER_PIECE = 4
PREROLL_SECONDS = 1.0  # rendered before a clip and dropped: notes already sounding ring on
TARGET_RMS = 10 ** (-23 / 20)  # -23 dBFS: every clip about as loud, whatever the instrument
PEAK_LIMIT = 0.95

# (GM program, 0-based; caption name): ten timbres an instrument classifier can tell apart.
INSTRUMENTS: tuple[tuple[int, str], ...] = (
    (0, "piano"),
    (6, "harpsichord"),
    (12, "marimba"),
    (19, "church organ"),
    (24, "acoustic guitar"),
    (48, "string ensemble"),
    (52, "choir"),
    (61, "brass section"),
    (71, "clarinet"),
    (73, "flute"),
)
STRETCHES = (0.8, 1.0, 1.25)  # > 1 is slower: tempo words then vary within a style
OCTAVES = (-12, 0, 12)
# What a style is called in a caption; a folder's own style names are used as they are.
STYLE_PHRASES = {
    "bach": "Bach chorale",
    "palestrina": "Palestrina mass movement",
    "folk": "folk tune",
}
# Tempo from the rate of distinct onsets (per second) in the clip: Palestrina's half notes
# are about 1.1/s, chorales 2-3.5/s, folk tunes 2-4/s at their written tempo.
SLOW_BELOW, FAST_FROM = 1.75, 3.25
TEMPO_PHRASES = {"slow": "slow", "moderate": "moderately paced", "fast": "fast"}
# Register from the mean pitch: chorales sit about 60 (middle C), folk melodies about 70.
LOW_BELOW, HIGH_ABOVE = 54.0, 67.0


@dataclass(frozen=True)
class RenderSettings:
    sample_rate: int = SAMPLE_RATE
    clip_seconds: float = CLIP_SECONDS
    clips_per_piece: int = CLIPS_PER_PIECE

    @property
    def clip_samples(self) -> int:
        return round(self.clip_seconds * self.sample_rate)


@dataclass(frozen=True)
class ClipPlan:
    index: int  # the clip's number within its piece
    program: int
    instrument: str
    stretch: float
    transpose: int


def plan_clip(piece_id: str, index: int) -> ClipPlan:
    """The instrument, speed and octave of clip `index` of a piece, from a hash of both
    (crc32 and numpy's PCG64 are the same on every machine)."""
    rng = np.random.default_rng(zlib.crc32(f"{piece_id}#{index}".encode()))
    program, name = INSTRUMENTS[int(rng.integers(len(INSTRUMENTS)))]
    factor = STRETCHES[int(rng.integers(len(STRETCHES)))]
    octave = OCTAVES[int(rng.integers(len(OCTAVES)))]
    return ClipPlan(index, program, name, factor, octave)


def tempo_label(onsets_per_second: float) -> str:
    if onsets_per_second < SLOW_BELOW:
        return "slow"
    return "fast" if onsets_per_second >= FAST_FROM else "moderate"


def register_label(mean_pitch: float) -> str:
    if mean_pitch < LOW_BELOW:
        return "low"
    return "high" if mean_pitch > HIGH_ABOVE else "middle"


def caption(instrument: str, style: str, tempo: str, register: str) -> str:
    """ "a church organ playing a slow Bach chorale in a low register"."""
    what = f"{TEMPO_PHRASES[tempo]} {STYLE_PHRASES.get(style, f'{style} piece')}"
    player = f"{_article(instrument)} {instrument}"
    verb = "singing" if instrument == "choir" else "playing"
    return f"{player} {verb} {_article(what)} {what} in a {register} register"


def _article(words: str) -> str:
    return "an" if words[0].lower() in "aeiou" else "a"


def window(notes: np.ndarray, start: float, seconds: float) -> np.ndarray:
    """The notes sounding in [start, start + seconds), as they are in the piece."""
    return notes[(notes["start"] < start + seconds) & (notes["end"] > start)]


def render_clip(
    notes: np.ndarray, start: float, plan: ClipPlan, settings: RenderSettings, soundfont: str
) -> np.ndarray:
    """Mono float32 samples of [start, start + clip_seconds) of (already moved) `notes`,
    loudness-normalised. Rendered from a pre-roll before `start`, so that notes struck
    before the clip ring into it as they would, not start at its edge."""
    begin = max(start - PREROLL_SECONDS, 0.0)
    end = start + settings.clip_seconds
    part = window(notes, begin, end - begin).copy()
    # Clamped to the rendered span: nothing before it is heard, nothing after it kept.
    part["start"] = np.maximum(part["start"], begin) - begin
    part["end"] = np.minimum(part["end"], end + 0.1) - begin
    stereo = render_audio(
        part,
        soundfont=soundfont,
        program=plan.program,
        sample_rate=settings.sample_rate,
        tail_seconds=0.0,
    )
    skip = round((start - begin) * settings.sample_rate)
    mono = stereo[skip : skip + settings.clip_samples].mean(axis=1)
    mono = np.pad(mono, (0, settings.clip_samples - len(mono)))
    rms = float(np.sqrt(np.mean(mono.astype(np.float64) ** 2)))
    peak = float(np.abs(mono).max())
    if rms > 0:
        mono = mono * min(TARGET_RMS / rms, PEAK_LIMIT / peak)
    return mono.astype(np.float32)


# ------------------------------------------------------------------------------------------
# A worker's task: (piece index, the piece, its style, the settings, the SoundFont's path).
RenderTask = tuple[int, Piece, str, RenderSettings, str]


def render_piece(task: RenderTask) -> PieceResult:
    """In a worker: (index, [(int16 clip, its metadata)], None) or (index, None, why it was
    skipped). Catches everything: one odd score must never cost the whole run."""
    index, piece, style, settings, soundfont = task
    try:
        notes = load_notes(piece)
        if len(notes) == 0:
            return index, None, "no notes (after leaving out drums)"
        clips = []
        for i in range(settings.clips_per_piece):
            clip = render_piece_clip(piece.id, i, notes, style, settings, soundfont)
            if clip is not None:
                clips.append(clip)
        if not clips:
            return index, None, "no clip with a note in it"
        return index, clips, None
    except Exception as e:  # music21 raises anything from its parsers on odd scores
        return index, None, skip_reason(e)


def render_piece_clip(
    piece_id: str, i: int, notes: np.ndarray, style: str, settings: RenderSettings, soundfont: str
) -> tuple[np.ndarray, dict] | None:
    """Clip `i` of a piece as int16 samples and its metadata (caption included), or None
    when no note starts inside it."""
    plan = plan_clip(piece_id, i)
    moved = transpose(notes, plan.transpose)
    octave = plan.transpose if moved is not None else 0  # an octave off the keyboard: stay
    moved = stretch(moved if moved is not None else notes, plan.stretch)
    # Clips spread evenly over the piece, each in the middle of its share.
    span = max(float(moved["end"].max()) - settings.clip_seconds, 0.0)
    start = round(span * (i + 0.5) / settings.clips_per_piece, 3)
    heard = window(moved, start, settings.clip_seconds)
    onsets = heard["start"][heard["start"] >= start]
    if len(onsets) == 0:
        return None
    rate = len(np.unique(np.round(onsets, 2))) / settings.clip_seconds
    mean_pitch = float(heard["pitch"].mean())
    tempo, register = tempo_label(rate), register_label(mean_pitch)
    audio = render_clip(moved, start, plan, settings, soundfont)
    meta = {
        "piece": piece_id,
        "clip": i,
        "start": start,
        "style": style,
        "program": plan.program,
        "instrument": plan.instrument,
        "stretch": plan.stretch,
        "transpose": octave,
        "onsets_per_second": round(rate, 3),
        "mean_pitch": round(mean_pitch, 2),
        "tempo": tempo,
        "register": register,
        "caption": caption(plan.instrument, style, tempo, register),
    }
    return np.round(np.clip(audio, -1.0, 1.0) * 32767).astype(np.int16), meta
