"""AudioKnobs: the keys turn a generator's temperature and CFG, and so do CCs read from a MIDI
input (a FakeInput shaped like ports.MidiInput: test_ports shows a real port delivers them)."""

from __future__ import annotations

import time
from types import SimpleNamespace

from cadenza.realtime.audio_knobs import AudioKnobs
from tests.realtime.helpers import ARRIVAL_TIMEOUT, FakeInput

TEMPERATURE_CC, CFG_CC = 21, 22


def plugin() -> SimpleNamespace:
    """The codec-lm plugin's shape: knobs.temperature and cfg_coef."""
    return SimpleNamespace(knobs=SimpleNamespace(temperature=1.0), cfg_coef=3.0)


def test_keys_turn_the_knobs_within_their_ranges():
    target = plugin()
    knobs = AudioKnobs(target, temperature="knobs.temperature", cfg="cfg_coef")
    for key in "++=":
        knobs.press(key)
    knobs.press("-")
    knobs.press("]")
    assert (target.knobs.temperature, target.cfg_coef) == (1.2, 3.5)
    for _ in range(40):
        knobs.press("[")
    assert target.cfg_coef == knobs.cfg_range[0]
    assert knobs.status() == "temp 1.20 | cfg 1.0"
    assert not knobs.quit.is_set()
    knobs.press("q")
    assert knobs.quit.is_set()


def test_a_cc_from_the_midi_input_turns_the_knobs():
    target = plugin()
    midi = FakeInput()
    knobs = AudioKnobs(target, temperature="knobs.temperature", cfg="cfg_coef",
                       temperature_cc=TEMPERATURE_CC, cfg_cc=CFG_CC, midi=midi)
    knobs.start()
    try:
        midi.send([0xB3, TEMPERATURE_CC, 127])  # any channel
        midi.send([0x90, CFG_CC, 0])  # a note, not a CC: turns nothing
        give_up = time.monotonic() + ARRIVAL_TIMEOUT
        while target.knobs.temperature != 2.0:
            assert time.monotonic() < give_up, knobs.status()
            time.sleep(0.005)
        assert target.cfg_coef == 3.0
        midi.send([0xB0, CFG_CC, 0])
        while target.cfg_coef != 1.0:
            assert time.monotonic() < give_up, knobs.status()
            time.sleep(0.005)
    finally:
        knobs.stop()
    assert len(midi) == 0  # every message was read
