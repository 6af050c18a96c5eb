"""AudioKnobs: the keys turn a generator's temperature and CFG, and so do real CCs sent
through a JACK MIDI port."""

from __future__ import annotations

import time
from types import SimpleNamespace

from cadenza.realtime.audio_knobs import AudioKnobs
from cadenza.realtime.ports import open_input
from tests.realtime.conftest import ARRIVAL_TIMEOUT, unique

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


def test_a_cc_through_a_jack_port_turns_the_knobs(player):
    target = plugin()
    with open_input(None, virtual_name=unique("audio-knobs")) as midi:
        knobs = AudioKnobs(target, temperature="knobs.temperature", cfg="cfg_coef",
                           temperature_cc=TEMPERATURE_CC, cfg_cc=CFG_CC, midi=midi)
        knobs.start()
        try:
            player.connect(midi.name)
            player.send([0xB3, TEMPERATURE_CC, 127])  # any channel
            player.send([0xB0, CFG_CC, 0])
            give_up = time.monotonic() + ARRIVAL_TIMEOUT
            while (target.knobs.temperature, target.cfg_coef) != (2.0, 1.0):
                assert time.monotonic() < give_up, knobs.status()
                time.sleep(0.01)
        finally:
            knobs.stop()
