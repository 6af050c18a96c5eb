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
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cadenza.atomic import atomic_path
from cadenza.corpus.clips import (
    INSTRUMENTS,
    STYLE_PHRASES,
    TEMPO_PHRASES,
    ClipPlan,
    RenderSettings,
    caption,
    render_clip,
    render_piece,
)
from cadenza.corpus.common import (
    SPLITS,
    gather_pieces,
    pieces_digest,
    process_pieces,
    write_metadata,
)
from cadenza.corpus.sources import source_key
from cadenza.errors import CadenzaError
from cadenza.render import find_soundfont

__all__ = [  # with the names of cadenza.corpus.clips this module's callers import
    "DEFAULT_SOURCES",
    "INSTRUMENTS",
    "METADATA",
    "STYLE_PHRASES",
    "TEMPO_PHRASES",
    "AudioCorpusSummary",
    "ClipPlan",
    "RenderSettings",
    "caption",
    "load_clips",
    "render_clip",
    "render_corpus",
]

FORMAT = "cadenza-audio-corpus/1"
METADATA = "audio.json"
DEFAULT_SOURCES = ("music21:bach", "music21:palestrina", "music21:folk")
MAX_PIECES_PER_SOURCE = 150
DEFAULT_SETTINGS = RenderSettings()


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
    settings: RenderSettings = DEFAULT_SETTINGS,
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
        "pieces_digest": pieces_digest(pieces),
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
    write_metadata(out_dir / METADATA, meta)
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
        metadata: list[dict] = []
        with atomic_path(self.path) as tmp:
            out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.int16, shape=shape)
            if self.rows:
                raw = np.memmap(self.part, dtype=np.int16, mode="r", shape=shape)
                for index in sorted(self.placed):
                    first, clips = self.placed[index]
                    rows = slice(len(metadata), len(metadata) + len(clips))
                    out[rows] = raw[first : first + len(clips)]
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
