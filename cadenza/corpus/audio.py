"""The audio corpus for the codec-lm plugin: the symbolic corpus played through a SoundFont.

Each piece (the same pieces and the same split by piece as `corpus prepare`) gives a few
clips of a few seconds. Each clip is played by one General MIDI instrument, at one of three
speeds and octaves, all chosen by a hash of (piece, clip), so a rerun gives the same corpus
on any machine, and each gets a caption made from what is known of it: "a church organ
playing a slow Bach chorale in a low register".

The output folder holds `{split}.audio.npy` (int16, shape (clips, samples): fixed-length
mono clips, memory-mappable) and `audio.json` (the settings, and per split every clip's
piece, instrument, tempo, register and caption, in the rows' order). Never pickles.
"""

from __future__ import annotations

import json
import os
import time
import zlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cadenza.corpus.prepare import (
    SPLITS,
    _digest,
    _one_line,
    gather_pieces,
    process_pieces,
)
from cadenza.corpus.sources import Piece, load_notes, source_key
from cadenza.errors import CadenzaError, MidiFileError
from cadenza.notes import stretch, transpose
from cadenza.render import find_soundfont, render_audio

FORMAT = "cadenza-audio-corpus/1"
METADATA = "audio.json"
DEFAULT_SOURCES = ("music21:bach", "music21:palestrina", "music21:folk")
# 24 kHz: the rate of EnCodec's music codec, wide enough for the SoundFont's upper harmonics
# (12 kHz), and a hop of 480 samples gives the 50 codec frames per second.
SAMPLE_RATE = 24000
CLIP_SECONDS = 4.0
CLIPS_PER_PIECE = 4
MAX_PIECES_PER_SOURCE = 150
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
_Task = tuple[int, Piece, str, RenderSettings, str]
_Result = tuple[int, list[tuple[np.ndarray, dict]] | None, str | None]


def render_piece(task: _Task) -> _Result:
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
    except MidiFileError as e:
        return index, None, e.problem
    except Exception as e:  # music21 raises anything from its parsers on odd scores
        return index, None, _one_line(f"{type(e).__name__}: {e}")


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


# ------------------------------------------------------------------------------------------
@dataclass
class AudioCorpusSummary:
    out_dir: Path
    clips: dict[str, list[dict]]  # per split, in the rows' order
    skipped: list[dict[str, str]]
    sample_rate: int
    clip_seconds: float
    cached: bool = False
    seconds: float = 0.0

    def report(self) -> str:
        how = "already rendered" if self.cached else f"{self.seconds:.1f} s"
        total = sum(len(c) for c in self.clips.values())
        lines = [
            f"audio corpus -> {self.out_dir}: {total} clips of {self.clip_seconds:g} s "
            f"at {self.sample_rate} Hz ({how})"
        ]
        for name, clips in self.clips.items():
            pieces = len({c["piece"] for c in clips})
            lines.append(
                f"  {name:<5} {pieces:>6,} pieces {len(clips):>7,} clips "
                f"{len(clips) * self.clip_seconds / 60:>8.1f} min"
            )
        every = [c for clips in self.clips.values() for c in clips]
        for field in ("instrument", "style", "tempo", "register"):
            counts = Counter(c[field] for c in every)
            lines.append(
                f"  {field + ':':<11} " + ", ".join(f"{k} {n}" for k, n in sorted(counts.items()))
            )
        lines.append(f"  skipped {len(self.skipped)}")
        lines.extend(f"    {s['piece']}: {s['reason']}" for s in self.skipped[:5])
        if len(self.skipped) > 5:
            lines.append(f"    ... all of them in {self.out_dir / METADATA}")
        return "\n".join(lines)


def render_corpus(
    sources: Sequence[str],
    out_dir: Path,
    *,
    settings: RenderSettings = RenderSettings(),
    soundfont: str | Path | None = None,
    max_pieces_per_source: int | None = MAX_PIECES_PER_SOURCE,
    limit: int | None = None,
    jobs: int | None = None,
    progress: bool = True,
    force: bool = False,
) -> AudioCorpusSummary:
    """Render clips of every piece of `sources` into `out_dir`, split by piece as
    `corpus prepare` splits. Returns at once when `out_dir` holds this corpus already
    (same pieces, settings and SoundFont) unless `force`; a piece that fails is skipped and
    listed with its reason."""
    started = time.perf_counter()
    out_dir = Path(out_dir)
    if settings.clip_seconds <= 0 or settings.clips_per_piece < 1 or settings.sample_rate < 8000:
        raise CadenzaError(
            "corpus render: --clip-seconds must be positive, --clips-per-piece at least 1 "
            "and --sample-rate at least 8000"
        )
    sf2 = find_soundfont(soundfont).resolve()
    pieces, piece_styles, styles = gather_pieces(list(sources), limit, max_pieces_per_source)
    stat = sf2.stat()
    key = {
        "format": FORMAT,
        "sources": [source_key(s) for s in sources],
        "limit": limit,
        "max_pieces_per_source": max_pieces_per_source,
        "sample_rate": settings.sample_rate,
        "clip_seconds": settings.clip_seconds,
        "clips_per_piece": settings.clips_per_piece,
        "soundfont": {"path": str(sf2), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns},
        "instruments": [list(i) for i in INSTRUMENTS],
        "pieces_digest": _digest(pieces),
    }
    if not force and (summary := _cached(out_dir, key)) is not None:
        if progress:
            print(summary.report())
        return summary

    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / METADATA).unlink(missing_ok=True)  # audio.json last: its presence = complete
    tasks = [(i, p, styles[piece_styles[i]], settings, str(sf2)) for i, p in enumerate(pieces)]
    writers = {split: _ClipWriter(out_dir, split, settings.clip_samples) for split in SPLITS}
    reasons = process_pieces(
        render_piece,
        tasks,
        pieces,
        writers,
        jobs=jobs,
        chunksize=1,
        desc="corpus render",
        progress=progress,
        failure="corpus render: no piece could be rendered",
    )

    clips_by_split = {split: writer.finish() for split, writer in writers.items()}
    skipped = [{"piece": pieces[i].id, "reason": r} for i, r in sorted(reasons.items())]
    summary = AudioCorpusSummary(
        out_dir,
        clips_by_split,
        skipped,
        settings.sample_rate,
        settings.clip_seconds,
        seconds=time.perf_counter() - started,
    )
    meta = {
        **key,
        "styles": styles,
        "splits": clips_by_split,
        "skipped": skipped,
        "seconds": round(summary.seconds, 2),
    }
    tmp = out_dir / f".{METADATA}.tmp"
    tmp.write_text(json.dumps(meta, indent=1) + "\n")
    os.replace(tmp, out_dir / METADATA)
    if progress:
        print(summary.report())
    return summary


class _ClipWriter:
    """Appends each piece's clips to a raw side file as workers finish (in any order, in
    bounded memory), then lays them out in piece order: the output never depends on
    scheduling, and a corpus larger than memory still renders."""

    def __init__(self, out_dir: Path, split: str, samples: int):
        self.path = out_dir / f"{split}.audio.npy"
        self.part = out_dir / f".{split}.audio.part"
        self.samples = samples
        self.file = open(self.part, "wb")  # closed in close(), after the run
        self.placed: dict[int, tuple[int, list[dict]]] = {}  # piece -> (first row, metadata)
        self.rows = 0

    def add(self, index: int, clips: list[tuple[np.ndarray, dict]]) -> None:
        self.placed[index] = (self.rows, [meta for _, meta in clips])
        for audio, _ in clips:
            self.file.write(np.ascontiguousarray(audio, dtype=np.int16).tobytes())
        self.rows += len(clips)

    def close(self) -> None:
        if not self.file.closed:
            self.file.close()

    def finish(self) -> list[dict]:
        """Write `{split}.audio.npy` in piece order; the clips' metadata in that order."""
        shape = (self.rows, self.samples)
        out = np.lib.format.open_memmap(self.path, mode="w+", dtype=np.int16, shape=shape)
        metadata: list[dict] = []
        if self.rows:
            raw = np.memmap(self.part, dtype=np.int16, mode="r", shape=shape)
            for index in sorted(self.placed):
                first, clips = self.placed[index]
                out[len(metadata) : len(metadata) + len(clips)] = raw[first : first + len(clips)]
                metadata.extend(clips)
            del raw
        out.flush()
        del out
        self.part.unlink(missing_ok=True)
        return metadata


def _cached(out_dir: Path, key: dict) -> AudioCorpusSummary | None:
    files = [out_dir / METADATA] + [out_dir / f"{s}.audio.npy" for s in SPLITS]
    if not all(p.is_file() for p in files):
        return None
    try:
        meta = json.loads((out_dir / METADATA).read_text())
        if any(meta.get(k) != v for k, v in key.items()):
            return None
        clips = {s: list(meta["splits"][s]) for s in SPLITS}
        return AudioCorpusSummary(
            out_dir,
            clips,
            list(meta["skipped"]),
            meta["sample_rate"],
            meta["clip_seconds"],
            cached=True,
        )
    except (ValueError, KeyError, TypeError):  # an older or hand-edited file: render again
        return None


def load_clips(out_dir: str | Path, split: str) -> tuple[np.ndarray, list[dict], int]:
    """(int16 audio (clips, samples), memory-mapped; each clip's metadata; sample rate)."""
    out_dir = Path(out_dir)
    if split not in SPLITS:
        raise CadenzaError(f"unknown split {split!r}; valid: {', '.join(SPLITS)}")
    path = out_dir / f"{split}.audio.npy"
    if not (out_dir / METADATA).is_file() or not path.is_file():
        raise CadenzaError(f"{out_dir}: no rendered audio corpus; run `cadenza corpus render`")
    meta = json.loads((out_dir / METADATA).read_text())
    audio = np.load(path, mmap_mode="r", allow_pickle=False)
    clips = meta["splits"][split]
    if audio.ndim != 2 or len(audio) != len(clips):
        raise CadenzaError(
            f"{path}: {len(audio)} clips but {METADATA} describes {len(clips)}; "
            "run `cadenza corpus render --force`"
        )
    return audio, clips, int(meta["sample_rate"])
