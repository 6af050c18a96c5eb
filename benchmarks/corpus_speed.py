"""How fast corpus preparation turns MIDI files into tokens, next to MidiTok's MIDILike.

    python benchmarks/corpus_speed.py --files 100

Bach chorales are first written as MIDI files by music21 (not timed). Then, over that same
folder, in the same run: our preparation (read + sustain + encode into the Performance
vocabulary, no augmentation, .npy written) in one process and on all cores, and MidiTok 3's
MIDILike tokenizer (symusic backend) in one process. Events are the tokens each produced.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from multiprocessing import Pool
from pathlib import Path

from cadenza.corpus.prepare import prepare_corpus
from cadenza.corpus.sources import Piece, music21_midi_bytes, resolve_source


def write_chorales(folder: Path, count: int) -> list[Path]:
    pieces = resolve_source("music21:bach")[:count]
    with Pool() as pool:  # setup only: music21 is slow, and this is not what is measured
        blobs = pool.map(_midi_bytes, pieces)
    paths = []
    for piece, data in zip(pieces, blobs, strict=True):
        path = folder / (piece.id.replace("/", "_") + ".mid")
        path.write_bytes(data)
        paths.append(path)
    return paths


def _midi_bytes(piece: Piece) -> bytes:
    return music21_midi_bytes(piece)


def time_ours(folder: Path, jobs: int) -> tuple[int, float]:
    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        summary = prepare_corpus(str(folder), Path(out), jobs=jobs, augment=False, progress=False)
        seconds = time.perf_counter() - started
    if summary.skipped:
        raise SystemExit(f"benchmark files failed to parse: {summary.skipped[:3]}")
    return sum(s.events for s in summary.splits.values()), seconds


def time_miditok(paths: list[Path]) -> tuple[int, float]:
    import miditok
    import symusic

    # As close to ours as MIDILike goes: 32 velocity bins, the sustain pedal read.
    config = miditok.TokenizerConfig(num_velocities=32, use_sustain_pedals=True)
    tokenizer = miditok.MIDILike(config)
    events = 0
    started = time.perf_counter()
    for path in paths:
        tokens = tokenizer(symusic.Score(str(path)))
        sequences = tokens if isinstance(tokens, list) else [tokens]  # one per track
        events += sum(len(seq.ids) for seq in sequences)
    return events, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=100, help="Bach chorales to write (100)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per method; best kept (3)")
    args = parser.parse_args()
    cores = os.cpu_count() or 1

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        paths = write_chorales(folder, args.files)
        methods = {
            "cadenza corpus, 1 process": lambda: time_ours(folder, 1),
            f"cadenza corpus, {cores} processes": lambda: time_ours(folder, cores),
            "miditok MIDILike, 1 process": lambda: time_miditok(paths),
        }
        rows = []
        for name, run in methods.items():
            results = [run() for _ in range(args.repeat)]
            events, seconds = min(results, key=lambda r: r[1])
            rows.append((name, len(paths), events, seconds, events / seconds))

    print(f"{'method':<32} {'files':>6} {'events':>10} {'seconds':>8} {'events/s':>11}")
    for name, files, events, seconds, rate in rows:
        print(f"{name:<32} {files:>6} {events:>10,} {seconds:>8.3f} {rate:>11,.0f}")


if __name__ == "__main__":
    main()
