"""Several input ports at once, each with its roles (cadenza.realtime.inputs): the syntax,
its one-line errors, and two real JACK ports feeding one engine."""

from __future__ import annotations

import time

import pytest

from cadenza.errors import ConfigError
from cadenza.realtime.config import load_live_config
from cadenza.realtime.inputs import ALL, InputRoute, parse_input, role_of
from tests.realtime.helpers import (
    PHRASE,
    RunningEngine,
    play_phrase,
    unique,
    wait_for,
)


@pytest.mark.parametrize(("text", "route"), [
    ("keyboard", InputRoute("keyboard")),
    ("nanoKONTROL:controls", InputRoute("nanoKONTROL", frozenset({"controls"}), True)),
    ("DAW:clock", InputRoute("DAW", frozenset({"clock"}), True)),
    ("keys:notes,controls", InputRoute("keys", frozenset({"notes", "controls"}), True)),
    ("keys:all", InputRoute("keys", ALL, True)),
    ("system:midi_capture_1", InputRoute("system:midi_capture_1")),  # a JACK name stays whole
])
def test_a_port_and_its_roles(text, route):
    assert parse_input(text) == route


@pytest.mark.parametrize(("ports", "words"), [
    (["keys:notes,drums"], "unknown role 'drums'"),
    ([":notes"], "a port name goes before"),
    (["a:clock", "b:clock"], "one clock source"),
])
def test_bad_ports_are_one_line_naming_the_setting(ports, words):
    with pytest.raises(ConfigError, match="input_port") as error:
        load_live_config(None, {"input_port": tuple(ports)})
    assert words in str(error.value)


def test_a_port_named_for_the_clock_is_followed_and_the_others_leave_it():
    config = load_live_config(None, {"input_port": ("keys", "DAW:clock")})
    assert config.follow_clock
    assert [r.roles for r in config.input_routes] == [ALL - {"clock"}, frozenset({"clock"})]
    with pytest.raises(ConfigError, match="several ports would carry the clock"):
        load_live_config(None, {"input_port": ("keys", "DAW"), "follow_clock": True})


def test_each_message_has_its_role():
    knobs = frozenset({21})
    assert role_of(b"\xf8", knobs) == "clock"
    assert role_of(bytes([0xB3, 21, 5]), knobs) == "controls"
    assert role_of(bytes([0xB0, 64, 127]), knobs) == "notes"  # the pedal is played
    assert role_of(bytes([0x90, 60, 90]), knobs) == "notes"


def test_two_input_ports_both_feed_the_engine(tiny_bundle, make_player):
    keys = make_player().open_virtual(unique("keys"))
    knobs = make_player().open_virtual(unique("knobs"))
    with RunningEngine(tiny_bundle, answer_length="0.5 s", temperature=1.0,
                       input_port=(keys.port_name, f"{knobs.port_name}:controls"),
                       **{"cc.temperature": 21}) as running:
        engine = running.engine
        assert keys.port_name in engine.midi_in.name and knobs.port_name in engine.midi_in.name
        time.sleep(0.2)  # JACK makes connections at its next cycles
        knobs.send([0xB0, 21, 127])  # the knob box turns the temperature up
        wait_for(lambda: engine.generator.knobs.temperature == 2.0)
        knobs.send([0x90, 40, 90])  # ... but plays no notes: it is read for controls only
        knobs.send([0x80, 40, 0])
        play_phrase(keys, PHRASE[:3])  # the keyboard plays
        wait_for(lambda: engine.stats.phrases == 1)
        time.sleep(0.1)
        primer = engine.mode.performer.records[0].primer
    notes = [e for e in primer if e < 128]
    assert notes == PHRASE[:3]  # the keyboard's notes, and not the knob box's
