"""The shipped vae bundle (models/vae): interpolation between held-out chorales is smooth."""

from __future__ import annotations

import numpy as np

from cadenza.bundle import default_bundle_path
from cadenza.pianoroll import HOLD, ONSET
from cadenza.plugins import load_generator


def held_out_chorales(count: int) -> list:
    """Test-split chorales (never trained on), on the grid with their pickups."""
    from cadenza.corpus.prepare import split_of
    from cadenza.corpus.sources import resolve_source
    from cadenza.training.vae_data import read_piece

    pieces = [p for p in resolve_source("music21:bach") if split_of(p.id) == "test"][:count]
    return [read_piece((k, p, 4))[1] for k, p in enumerate(pieces)]


def test_interpolation_between_held_out_phrases_is_smooth():
    """Consecutive steps of an interpolation are closer to each other than the two ends are
    (Hamming distance of the sounding piano rolls, decoded at temperature 0): on average on
    every pair, and at nearly every single step (a greedy decoder can switch texture at one
    point of the path: one onset more changes what follows it)."""
    generator = load_generator(default_bundle_path("vae"))
    generator.knobs.temperature = 0.0
    segments = [roll for piece in held_out_chorales(6) for roll in generator.segments_of(piece)]
    rng = np.random.default_rng(0)
    closer, pairs = [], 0
    for _ in range(12):
        i, j = rng.choice(len(segments), 2, replace=False)
        a, b = generator.encode(segments[i])[0], generator.encode(segments[j])[0]
        rolls = generator.run_mode("interpolate", endpoints=(a, b), steps=8)
        sounding = [(r[:, ONSET] + r[:, HOLD]) > 0 for r in rolls]
        ends = np.sum(sounding[0] != sounding[-1])
        if ends == 0:
            continue  # two phrases that decode alike: nothing to bridge
        steps = [np.sum(x != y) for x, y in zip(sounding[:-1], sounding[1:], strict=True)]
        assert np.mean(steps) < ends
        closer.extend(step < ends for step in steps)
        pairs += 1
    assert pairs >= 8
    assert np.mean(closer) >= 0.85
