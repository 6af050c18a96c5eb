"""Where an event model's extra voices come from: its samples against its training corpus.

    .venv/bin/python scripts/voices_figures.py models/performance-rnn models/transformer

For each bundle, `--samples` samples of `--seconds` as `cadenza eval` makes them (half continue
a held-out piece's first 5 s, half start from nothing; seeds 0, 1, ...), drawn twice: freely
from the model's logits (as before issue 18) and through the sampler's grammar
(cadenza.plugins.voices, `--max-voices` as given). Printed per set: NOTE_ONs of a pitch
already sounding, NOTE_OFFs of a pitch not sounding, notes of 2 s or more, notes ended only by
the decoders' 5 s cap, MusPy's polyphony (primed and from scratch), and for the corpus the
notes sounding at an onset (median, 90th and 99th percentile: a voice limit's measure).
"""

from __future__ import annotations

import argparse
import collections

import numpy as np

from cadenza.corpus.prepare import load_split
from cadenza.eval.metrics import polyphony
from cadenza.eval.samples import held_out_pieces, primer_of, window
from cadenza.events import PERFORMANCE
from cadenza.generate import continue_primer
from cadenza.plugins import EventGenerator, load_generator
from cadenza.plugins.sampling import sample

PRIMER_SECONDS = 5.0


def stream_figures(streams: list[tuple[list[int], list[int]]]) -> dict[str, float]:
    """(primer events, generated events) pairs -> the shares of impossible events and drones."""
    ons = dup = offs = orphan = notes = long = capped = 0
    for primer, events in streams:
        sounding: collections.Counter = collections.Counter()
        for k, event in enumerate([*primer, *events]):
            generated = k >= len(primer)
            if event < PERFORMANCE.note_off:
                ons, dup = ons + generated, dup + (generated and sounding[event] > 0)
                sounding[event] += 1
            elif event <= PERFORMANCE.time_shift:
                pitch = event - PERFORMANCE.note_off
                offs, orphan = offs + generated, orphan + (generated and sounding[pitch] == 0)
                sounding[pitch] = max(0, sounding[pitch] - 1)
        decoded = PERFORMANCE.decode(np.array([*primer, *events]))
        mine = decoded[decoded["start"] >= PERFORMANCE.seconds(np.array(primer)) - 1e-9]
        length = mine["end"] - mine["start"]
        notes, long = notes + len(mine), long + int((length >= 2.0).sum())
        capped += int((np.abs(length - PERFORMANCE.max_note_seconds) < 1e-6).sum())
    return {"on of a sounding pitch": dup / max(ons, 1),
            "off of a silent pitch": orphan / max(offs, 1),
            "notes >= 2 s": long / max(notes, 1), "ended by the 5 s cap": capped / max(notes, 1)}


def free_continuation(generator: EventGenerator, primer: np.ndarray, seconds: float) -> list[int]:
    """Events drawn from the raw logits, no grammar (the sampler before issue 18)."""
    generator.prime(primer)
    events, steps = [], 0
    while steps < seconds * PERFORMANCE.steps_per_second and len(events) < 200 * seconds + 100:
        event = sample(generator.logits, generator.knobs, generator.rng)
        generator.extend([event])
        events.append(event)
        if PERFORMANCE.time_shift < event <= PERFORMANCE.velocity:
            steps += event - PERFORMANCE.time_shift
    return events


def bundle_rows(bundle: str, corpus: str, count: int, seconds: float,
                max_voices: int) -> list[tuple[str, dict[str, float]]]:
    generator = load_generator(bundle)
    if not isinstance(generator, EventGenerator) or not hasattr(generator, "logits"):
        raise SystemExit(f"{bundle}: not an event model that samples events one by one")
    generator.knobs.max_voices = max_voices
    pieces = held_out_pieces(corpus)
    rows = []
    for grammar in (False, True):
        streams, figures = [], []
        for k in range(count):
            generator.seed(k)
            primed = k < (count + 1) // 2
            primer_notes = primer_of(pieces[k % len(pieces)] if primed else pieces[0],
                                     PRIMER_SECONDS if primed else 0.0)
            primer = PERFORMANCE.encode(primer_notes)
            if grammar:
                events = continue_primer(generator, primer_notes, seconds).events.tolist()
            else:
                events = free_continuation(generator, primer, seconds)
            streams.append((primer.astype(int).tolist(), events))
            notes = PERFORMANCE.decode(np.array([*primer, *events]))
            start = PERFORMANCE.seconds(primer)
            figures.append((primed, polyphony(window(notes, start, start + seconds + 1e-9))))
        row = stream_figures(streams)
        for primed, name in ((True, "polyphony primed"), (False, "polyphony scratch")):
            row[name] = float(np.mean([p for was, p in figures if was == primed]))
        rows.append((f"{generator.bundle.name} {'grammar' if grammar else 'free'}", row))
    return rows


def corpus_row(corpus: str, split: str) -> tuple[str, dict[str, float]]:
    tokens, offsets = load_split(corpus, split)
    streams, at_onset, polys = [], [], []
    for i in range(len(offsets) - 1):
        events = np.asarray(tokens[offsets[i] : offsets[i + 1]], dtype=np.int64)
        streams.append(([], events.tolist()))
        notes = PERFORMANCE.decode(events)
        for t in np.unique(notes["start"]):
            at_onset.append(int(((notes["start"] <= t) & (notes["end"] > t)).sum()))
        polys.append(polyphony(notes))
    row = stream_figures(streams)
    row["polyphony"] = float(np.mean(polys))
    for q in (50, 90, 99):
        row[f"sounding at an onset p{q}"] = float(np.percentile(at_onset, q))
    return f"{corpus} ({split})", row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundles", nargs="*")
    parser.add_argument("--data", default="data/corpus/music21-bach")
    parser.add_argument("--split", default="test", help="the corpus split to measure")
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--max-voices", type=int, default=0)
    args = parser.parse_args()
    rows = [corpus_row(args.data, args.split)]
    for bundle in args.bundles:
        rows += bundle_rows(bundle, args.data, args.samples, args.seconds, args.max_voices)
    for name, row in rows:
        print(name)
        for key, value in row.items():
            print(f"  {key:28s} {value:8.3f}" if value >= 1 else f"  {key:28s} {value:8.1%}")


if __name__ == "__main__":
    main()
