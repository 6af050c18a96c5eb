"""The control surface's controllers given on the command line (cadenza.realtime.controls):
--panic-cc ends every sounding note and lifts the pedal; --max-voices / --mono, the voices CC
and the { } keys limit the notes an answer sounds at once."""

from __future__ import annotations

import pytest

from cadenza.bundle import default_bundle_path
from cadenza.realtime.config import load_live_config
from cadenza.realtime.controls import VOICES_KNOB, voices_from_cc
from tests.realtime.helpers import PHRASE, FakeRunningEngine, feed_phrase, note_ons, wait_for


def test_the_panic_cc_ends_every_sounding_note(tiny_bundle):
    with FakeRunningEngine(tiny_bundle, answer_length="20 s", passthrough=True,
                           **{"cc.panic": 30}) as running:
        engine = running.engine
        feed_phrase(running.input, PHRASE[:3])
        wait_for(lambda: len(note_ons(running.output.events)) > 3 and engine.scheduler.sounding)
        running.input.send([0xB0, 64, 127])  # the pedal down during the answer, passed through
        running.input.send([0xB0, 30, 127])  # panic
        wait_for(lambda: not engine.scheduler.sounding and not engine.mode.performer.busy)
        sent = running.output.messages
    panic_at = max(i for i, m in enumerate(sent) if m[:2] == [0xB0, 123])  # all notes off
    assert [0xB0, 64, 0] in sent[:panic_at + 2]  # the pedal lifted
    assert not engine.scheduler.sounding


def test_the_panic_cc_is_set_by_its_flag():
    assert load_live_config(None, {"cc.panic": 30}).cc.panic == 30


@pytest.mark.parametrize("value, voices", [(0, 1), (14, 1), (15, 2), (113, 8), (114, 0), (127, 0)])
def test_the_voices_cc_goes_from_mono_to_no_limit(value, voices):
    assert voices_from_cc(value) == voices
    assert VOICES_KNOB == (1, 8)


def most_sounding(messages) -> int:
    """The most notes the engine held at once on its output."""
    sounding, most = set(), 0
    for message in messages:
        if message[0] & 0xF0 == 0x90 and message[2] > 0:
            sounding.add(message[1])
        elif message[0] & 0xF0 in (0x80, 0x90):
            sounding.discard(message[1])
        most = max(most, len(sounding))
    return most


def test_a_mono_answer_sounds_one_note_at_a_time_and_the_knob_turns():
    with FakeRunningEngine(default_bundle_path("performance-rnn"), max_voices=1,
                           answer_length="3 s", **{"cc.voices": 40}) as running:
        engine = running.engine
        assert engine.generator.knobs.max_voices == 1
        assert "voices 1 |" in engine.mode.status("")
        feed_phrase(running.input, PHRASE)
        wait_for(lambda: len(note_ons(running.output.events)) > 4)
        wait_for(lambda: not engine.mode.performer.busy)
        assert most_sounding(running.output.messages) == 1
        running.input.send([0xB0, 40, 127])  # the voices knob turned fully up: no limit
        wait_for(lambda: engine.generator.knobs.max_voices == 0)
        assert "voices all |" in engine.mode.status("")
        running.input.send([0xB0, 40, 20])
        wait_for(lambda: engine.generator.knobs.max_voices == 2)
        engine.controls.press("}")
        assert engine.generator.knobs.max_voices == 3
        for _ in range(10):
            engine.controls.press("{")
        assert engine.generator.knobs.max_voices == 1  # the bottom of the knob: mono
        for _ in range(10):
            engine.controls.press("}")
        assert engine.generator.knobs.max_voices == 0  # past the top: no limit


def test_the_bundles_voices_stay_unless_the_flag_is_given():
    assert load_live_config(None, {}).max_voices is None
    assert load_live_config(None, {"max_voices": 3, "cc.voices": 41}).cc.voices == 41


def test_the_knobs_start_at_the_bundles_defaults_unless_given():
    """The shipped LSTM's sampling defaults (chosen on the validation split) are what a
    player hears first; a flag or YAML value still wins."""
    from tests.realtime.helpers import fake_engine

    bundle = default_bundle_path("performance-rnn")
    knobs = fake_engine(bundle).mode.generator.knobs
    assert (knobs.temperature, knobs.top_p, knobs.max_voices) == (0.9, 0.9, 10)
    knobs = fake_engine(bundle, temperature=1.2, top_p=1.0, max_voices=0).mode.generator.knobs
    assert (knobs.temperature, knobs.top_p, knobs.max_voices) == (1.2, 1.0, 0)
