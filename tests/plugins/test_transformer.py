"""The transformer plugin: a real exported bundle, its numpy KV cache, endless generation."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from cadenza.errors import BundleError
from cadenza.events import PERFORMANCE
from cadenza.generate import continue_primer
from cadenza.midi import load_notes
from cadenza.plugins import load_generator, plugin_classes
from cadenza.plugins.transformer import KVCache, MusicTransformer

PRIMER = np.array([PERFORMANCE.velocity + 16, 60, PERFORMANCE.time_shift + 50, 188])


def test_registered_under_the_entry_point_group():
    assert plugin_classes()["transformer"] is MusicTransformer


def test_the_cache_keeps_the_style_slot_and_rings_through_the_rest():
    cache = KVCache(layers=1, heads=1, head_dim=2, size=4)
    cache.fill(np.zeros((1, 1, 2, 2), np.float32), np.zeros((1, 1, 2, 2), np.float32))
    for value in range(2, 9):
        cache.append(np.full((1, 1, 2), value, np.float32), np.zeros((1, 1, 2), np.float32))
    # Positions 0 (the style) and the latest three of 1..8 remain.
    assert sorted(cache.positions.tolist()) == [0, 6, 7, 8]
    assert cache.positions[0] == 0
    assert sorted(cache.k[0, 0, 1:, 0].tolist()) == [6.0, 7.0, 8.0]


def test_ten_times_the_context_stays_valid_and_keeps_time(tiny_transformer_bundle):
    context = 32
    generator = MusicTransformer(load_bundle_of(tiny_transformer_bundle), seed=5, context=context)
    generator.prime(PRIMER)
    events = generator.generate(10 * context)
    assert ((events >= 0) & (events < PERFORMANCE.num_classes)).all()  # never a style token
    assert generator.cache.next_position == 1 + len(PRIMER) + len(events)
    assert generator.cache.positions.max() == generator.cache.next_position - 1
    # Time goes on in every stretch of one context: no stall after the window starts sliding.
    for chunk in np.split(events, 10):
        assert ((chunk > PERFORMANCE.time_shift) & (chunk <= PERFORMANCE.velocity)).any()


def test_same_seed_same_continuation_and_snapshot_rewinds(tiny_transformer_bundle):
    a = load_generator(tiny_transformer_bundle, seed=3)
    b = load_generator(tiny_transformer_bundle, seed=3)
    a.prime(PRIMER)
    b.prime(PRIMER)
    assert a.generate(50).tolist() == b.generate(50).tolist()
    state = a.snapshot()  # the random state included
    first = a.generate(30).tolist()
    a.restore(state)
    assert a.generate(30).tolist() == first


def test_styles_come_from_the_bundle_and_an_unknown_one_is_named(tiny_transformer_bundle):
    generator = load_generator(tiny_transformer_bundle, seed=0)
    generator.prime(PRIMER, {"style": "bach"})
    tagged = generator.logits.copy()
    generator.set_style(None)
    assert not np.allclose(tagged, generator.logits)
    with pytest.raises(BundleError, match="no style 'jazz' in this bundle \\(has: bach\\)"):
        generator.prime(PRIMER, {"style": "jazz"})


def test_it_continues_a_primer_like_any_plugin(tiny_transformer_bundle, chorale_midi):
    generator = load_generator(tiny_transformer_bundle, seed=2)
    primer = load_notes(chorale_midi)[:12]
    result = continue_primer(generator, primer, seconds=3.0)
    assert len(result.events) > 0
    assert result.notes["start"].max() >= result.primer_seconds - 1e-6


@pytest.fixture(scope="module")
def two_style_bundle(tmp_path_factory):
    """A tiny transformer trained on a corpus of two styles (chorales and folk tunes)."""
    from cadenza.corpus.prepare import prepare_corpus
    from cadenza.export.checkpoint import export_checkpoint
    from cadenza.training.config import load_config
    from cadenza.training.loop import train
    from tests.helpers import TINY_TRANSFORMER

    root = tmp_path_factory.mktemp("two-styles")
    prepare_corpus(["music21:bach", "music21:folk"], root / "corpus", limit=6, augment=False,
                   jobs=2, progress=False)
    config = load_config(None, [f"data={root / 'corpus'}", f"out={root / 'run'}",
                                "max_steps=20", "eval_every=20", *TINY_TRANSFORMER],
                         kind="transformer")
    train(config, progress=False)
    return export_checkpoint(root / "run" / "best.pt", root / "bundle")


def test_a_corpus_of_two_styles_gives_a_bundle_that_switches_between_them(two_style_bundle):
    generator = load_generator(two_style_bundle, seed=0)
    assert generator.styles == ["bach", "folk"]
    logits = {}
    for style in (None, "bach", "folk"):
        generator.prime(PRIMER, {"style": style})
        logits[style] = generator.logits.copy()
    assert not np.allclose(logits["bach"], logits["folk"])
    assert not np.allclose(logits[None], logits["folk"])
    generator.set_style("folk")  # mid-stream, as the live knob does: the same events stay
    assert list(generator.history) == PRIMER.tolist()
    assert np.allclose(generator.logits, logits["folk"], atol=1e-5)


def load_bundle_of(path):
    from cadenza.bundle import load_bundle

    return load_bundle(path)


def guided_by_hand(generator, style, guidance):
    """any + g * (style - any), each from a fresh prefill of the generator's history."""
    history = list(generator.history)
    plain = load_generator(generator.bundle.path, seed=0)
    plain.prime(history, {"style": None})
    unstyled = plain.logits.astype(np.float64)
    plain.set_style(style)
    return unstyled + guidance * (plain.logits - unstyled)


def test_style_guidance_mixes_the_styled_and_the_untagged_logits(two_style_bundle):
    generator = load_generator(two_style_bundle, seed=0)
    generator.style_guidance = 3.0
    generator.prime(PRIMER, {"style": "folk"})
    assert np.allclose(generator.logits, guided_by_hand(generator, "folk", 3.0), atol=1e-4)
    played = generator.generate(300)  # through the ring more than once (a 128-slot cache)
    # Each context is the one an unguided generator keeps, fed the same events.
    for style, logits in (("folk", generator.styled_logits), (None, generator.unstyled_logits)):
        alone = load_generator(two_style_bundle, seed=0)
        alone.prime(PRIMER, {"style": style})
        alone.extend(played)
        assert np.allclose(logits, alone.logits, atol=1e-4)
    mixed = generator.unstyled_logits + 3.0 * (generator.styled_logits - generator.unstyled_logits)
    assert np.allclose(generator.logits, mixed)


def test_style_guidance_turned_on_mid_stream_catches_up_at_the_next_event(two_style_bundle):
    generator = load_generator(two_style_bundle, seed=0)
    generator.prime(PRIMER, {"style": "bach"})
    generator.generate(20)
    assert generator.unstyled_logits is None  # guidance 1: no second cache run
    generator.style_guidance = 2.0
    generator.generate(1)
    assert np.allclose(generator.logits, guided_by_hand(generator, "bach", 2.0), atol=1e-4)


def test_style_guidance_snapshots_rewind_both_caches(two_style_bundle):
    generator = load_generator(two_style_bundle, seed=0)
    generator.style_guidance = 2.0
    generator.prime(PRIMER, {"style": "bach"})
    state = generator.snapshot()
    first = generator.generate(40)
    generator.restore(state)
    assert np.array_equal(generator.generate(40), first)


def test_untagged_or_a_model_that_never_learnt_any_is_not_guided(two_style_bundle, tmp_path):
    generator = load_generator(two_style_bundle, seed=0)
    generator.style_guidance = 3.0
    generator.prime(PRIMER, {"style": None})
    plain = load_generator(two_style_bundle, seed=0)
    plain.prime(PRIMER, {"style": None})
    assert np.array_equal(generator.logits, plain.logits)
    # The same model, as if trained with every window tagged (style_dropout 0).
    never = tmp_path / "never-untagged"
    shutil.copytree(two_style_bundle, never)
    manifest = never / "manifest.yaml"
    manifest.write_text(manifest.read_text().replace("style_dropout: 0.1", "style_dropout: 0.0"))
    tagged = load_generator(never, seed=0)
    tagged.style_guidance = 3.0
    tagged.prime(PRIMER, {"style": "folk"})
    assert not tagged.guiding and tagged.unstyled_logits is None
    plain.set_style("folk")
    assert np.allclose(tagged.logits, plain.logits)
