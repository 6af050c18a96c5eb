"""The voices knob and the event grammar (cadenza.plugins.voices), on the shipped bundles."""

from __future__ import annotations

import collections
import shutil

import numpy as np
import pytest

from cadenza.bundle import default_bundle_path, load_bundle
from cadenza.demo import PRIMERS
from cadenza.errors import BundleError
from cadenza.events import PERFORMANCE
from cadenza.generate import continue_primer
from cadenza.manifest import Sampling
from cadenza.midi import load_notes
from cadenza.notes import empty_notes
from cadenza.plugins import load_generator
from cadenza.plugins.sampling import Knobs
from cadenza.plugins.voices import Voices, keep_highest

ON, OFF = PERFORMANCE.note_on, PERFORMANCE.note_off
SHIFT, VELOCITY = PERFORMANCE.time_shift, PERFORMANCE.velocity
EVENT_BUNDLES = ["performance-rnn", "transformer"]
CHORALE = PRIMERS / "chorale.mid"


def most_sounding(events) -> int:
    """The most notes sounding at once in an event stream, counted without cadenza.plugins."""
    sounding, most = {}, 0
    for event in (int(e) for e in events):
        if event < OFF:
            sounding[event] = sounding.get(event, 0) + 1
        elif event <= SHIFT and sounding.get(event - OFF):
            sounding[event - OFF] -= 1
        most = max(most, sum(sounding.values()))
    return most


def impossible_events(primer, events) -> int:
    """NOTE_ONs of a sounding pitch and NOTE_OFFs of a silent one among `events`, after
    `primer` (which may double a pitch: the chorales do)."""
    sounding, bad = collections.Counter(), 0
    for k, event in enumerate(int(e) for e in [*primer, *events]):
        generated = k >= len(primer)
        if event < OFF:
            bad += generated and sounding[event] > 0
            sounding[event] += 1
        elif event <= SHIFT:
            bad += generated and sounding[event - OFF] == 0
            sounding[event - OFF] = max(0, sounding[event - OFF] - 1)
    return bad


# --- the masks ------------------------------------------------------------------------------
def test_once_a_note_has_begun_nothing_sounding_no_note_off_may_come():
    voices = Voices(PERFORMANCE)
    logits = np.zeros(PERFORMANCE.num_classes)
    # From nothing, a model first ends the notes its training windows began before them.
    assert np.isfinite(voices.mask(logits)[OFF:OFF + 128]).all()
    voices.take([ON + 60, SHIFT + 20, OFF + 60])
    masked = voices.mask(logits)
    assert np.isneginf(masked[OFF:OFF + 128]).all()
    assert np.isfinite(masked[ON:ON + 128]).all()
    assert np.isfinite(masked[SHIFT + 1:]).all()  # time shifts and velocities, always
    voices.reset()
    assert np.isfinite(voices.mask(logits)[OFF + 60])


def test_a_sounding_pitch_is_neither_started_again_nor_others_ended():
    voices = Voices(PERFORMANCE)
    voices.take([ON + 60, SHIFT + 10, ON + 64])
    masked = voices.mask(np.zeros(PERFORMANCE.num_classes))
    assert np.isneginf(masked[[ON + 60, ON + 64]]).all()
    assert np.isfinite(masked[[OFF + 60, OFF + 64, ON + 62]]).all()
    assert np.isneginf(np.delete(masked[OFF:OFF + 128], [60, 64])).all()


def test_at_max_voices_no_note_starts_and_under_it_they_may():
    voices = Voices(PERFORMANCE)
    voices.take([ON + 60, ON + 64])
    logits = np.zeros(PERFORMANCE.num_classes)
    assert np.isneginf(voices.mask(logits, max_voices=2)[ON:ON + 128]).all()
    assert np.isfinite(voices.mask(logits, max_voices=3)[ON + 67])
    assert np.isfinite(voices.mask(logits, max_voices=0)[ON + 67])  # 0: no limit
    voices.take([OFF + 60])
    assert np.isfinite(voices.mask(logits, max_voices=2)[ON + 67])


def test_a_primer_that_doubles_a_pitch_may_end_both_and_orphan_offs_are_ignored():
    voices = Voices(PERFORMANCE)
    voices.take([OFF + 50, ON + 60, ON + 60, OFF + 60])
    assert voices.pitches() == [60] and voices.sounding == 1
    voices.take([OFF + 60])
    assert voices.sounding == 0


def test_keep_highest_thins_a_step_from_below():
    notes = np.zeros(128, bool)
    notes[[48, 60, 64, 67]] = True
    assert np.flatnonzero(keep_highest(notes, 2)).tolist() == [64, 67]
    assert np.flatnonzero(keep_highest(notes, 1)).tolist() == [67]
    assert keep_highest(notes, 0) is notes


@pytest.mark.parametrize("value", [-1, 129, 2.5, True])
def test_knobs_refuse_a_bad_voice_count(value):
    with pytest.raises(ValueError, match="max_voices"):
        Knobs(max_voices=value)


def test_a_manifest_voice_count_is_checked_and_absent_means_no_limit():
    assert Sampling.from_dict({}, "manifest.yaml").max_voices is None
    with pytest.raises(BundleError, match="max_voices"):
        Sampling.from_dict({"max_voices": 500}, "manifest.yaml", "sampling")


# --- generators -----------------------------------------------------------------------------
@pytest.mark.parametrize("plugin", EVENT_BUNDLES)
def test_generation_never_writes_an_impossible_event(plugin):
    generator = load_generator(default_bundle_path(plugin), seed=4)
    result = continue_primer(generator, load_notes(CHORALE), 8.0)
    primer = PERFORMANCE.encode(load_notes(CHORALE)).tolist()
    assert impossible_events(primer, result.events.tolist()) == 0
    assert impossible_events([], [ON + 60, ON + 60, OFF + 61]) == 2  # the count counts


@pytest.mark.parametrize("plugin, voices", [("performance-rnn", 1), ("transformer", 2)])
def test_generation_keeps_to_max_voices(plugin, voices):
    generator = load_generator(default_bundle_path(plugin), seed=1)
    generator.knobs.max_voices = voices
    result = continue_primer(generator, empty_notes(), 10.0)
    assert (result.events < OFF).sum() > 5  # it plays
    assert most_sounding(result.events) <= voices


def test_the_primers_sounding_notes_hold_voices_until_they_end():
    generator = load_generator(default_bundle_path("performance-rnn"), seed=2)
    generator.knobs.max_voices = 2
    generator.prime([VELOCITY + 20, ON + 60, ON + 64, SHIFT + 50])
    assert generator.voices.pitches() == [60, 64]
    events = generator.generate(120).tolist()
    first_on = next(i for i, e in enumerate(events) if e < OFF)
    assert any(e in (OFF + 60, OFF + 64) for e in events[:first_on])
    assert most_sounding([ON + 60, ON + 64, *events]) <= 2


@pytest.mark.parametrize("plugin", EVENT_BUNDLES)
def test_a_snapshot_carries_the_voices(plugin):
    generator = load_generator(default_bundle_path(plugin), seed=5)
    generator.knobs.max_voices = 3
    generator.prime(PERFORMANCE.encode(load_notes(CHORALE))[:40])
    state, before = generator.snapshot(), generator.voices.pitches()
    first = generator.generate(80).tolist()
    generator.restore(state)
    assert generator.voices.pitches() == before
    assert generator.generate(80).tolist() == first


def test_the_vae_keeps_its_highest_notes():
    generator = load_generator(default_bundle_path("vae"), seed=3)
    generator.knobs.max_voices = 1
    roll = generator.decode(generator.prior())
    per_step = (roll[:, 0] + roll[:, 1] > 0).sum(axis=1)
    assert per_step.max() <= 1 and per_step.sum() > 0


def test_a_bundle_sets_the_default_and_an_old_one_has_none(tmp_path):
    for plugin in EVENT_BUNDLES:
        bundle = load_bundle(default_bundle_path(plugin))
        assert load_generator(bundle.path).knobs.max_voices == 10  # the corpus's 99th percentile
    old = tmp_path / "old"
    shutil.copytree(default_bundle_path("performance-rnn"), old)
    manifest = old / "manifest.yaml"
    manifest.write_text(manifest.read_text().replace("  max_voices: 10\n", ""))
    assert load_generator(old).knobs.max_voices == 0
