"""Call and response with the vae plugin, on fake ports (tests/realtime/helpers.py; an answer
through real JACK ports is in test_engine.py): the answer is the VAE's continuation of the
call, quantised at the engine's tempo."""

from __future__ import annotations

import numpy as np

from cadenza.events import PERFORMANCE
from cadenza.plugins import load_generator
from tests.realtime.helpers import (
    PHRASE,
    FakeRunningEngine,
    answer_played,
    feed_phrase,
    has_note_on,
    note_ons,
    sounding_after,
    wait_for,
)

BPM = 100.0


def test_the_answer_is_the_vaes_continuation_at_the_engines_tempo(tiny_vae_bundle):
    with FakeRunningEngine(tiny_vae_bundle, answer_length="1 s", bpm=BPM,
                           temperature=1.0) as running:
        phrase_end = feed_phrase(running.input)
        running.output.wait_until(has_note_on)
        wait_for(lambda: answer_played(running.engine))  # the rest of the answer
        records = running.engine.mode.performer.records
    ons = note_ons(running.output.events)
    assert ons[0][0] > phrase_end  # it listened first, then answered
    assert len(records) == 1
    record = records[0]
    assert len(record.primer) >= 2 * len(PHRASE)  # the call is the context

    # The same generator, given the call at the same tempo and seed, makes the same events.
    generator = load_generator(tiny_vae_bundle)
    generator.knobs.temperature = 1.0
    generator.prime([], {"bpm": BPM})
    generator.extend(record.primer)
    generator.seed(record.seed)
    assert generator.generate(len(record.events)).tolist() == record.events

    # Its notes sit on the 16th-note grid of 100 bpm, counted from the call's first note.
    notes = PERFORMANCE.decode(np.array(record.primer + record.events))
    step = 60.0 / BPM / 4
    steps = (
        notes["start"][notes["start"] >= PERFORMANCE.seconds(record.primer)] - notes["start"].min()
    ) / step
    assert len(steps) > 0
    assert np.abs(steps - np.round(steps)).max() * step <= 0.005 + 1e-9  # the codec's 10 ms
    assert sounding_after(running.output.messages) == {}
