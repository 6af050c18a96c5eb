"""`cadenza live` settings: YAML + command line, and a one-line error naming a bad field."""

from __future__ import annotations

import pytest

from cadenza.errors import ConfigError
from cadenza.realtime.clock import BeatGrid
from cadenza.realtime.config import AnswerLength, LiveConfig, load_live_config
from cadenza.realtime.controls import answer_bars_from_cc, density_from_cc, temperature_from_cc


@pytest.fixture
def live_yaml(tmp_path, monkeypatch):
    """Write a live.yaml in a fresh working directory and return its name as a user types it."""
    monkeypatch.chdir(tmp_path)

    def write(text: str) -> str:
        (tmp_path / "live.yaml").write_text(text)
        return "live.yaml"

    return write


def test_defaults_without_a_file():
    config = load_live_config(None, {})
    assert config == LiveConfig()
    assert config.mode == "call-response"
    assert config.input_port is None and config.output_port is None  # virtual ports


def test_a_full_file_is_read(live_yaml):
    path = live_yaml(
        """
mode: accompany
input_port: Keystation
output_port: IAC
input_channel: 2
output_channel: 10
program: 0
passthrough: true
bpm: 96
follow_clock: true
quantize_answer_to: bar
beats_per_bar: 3
silence_seconds: 0.8
silence_beats: 2
end_cc: 20
answer_length: 4 bars
on_interrupt: overlap
temperature: 1.2
top_k: 40
top_p: 0.95
plugin: performance-rnn
bundle: models/performance-rnn
seed: 7
quiet: true
synth: true
soundfont: /usr/share/sounds/sf2/FluidR3_GM.sf2
lookahead_seconds: 2
loop: true
backing_channels: [3, 4, 5]
backing_velocity: [90, 70, 80]
backing_ports: true
density: -1.5
loop_bars: 4
backing_programs: [52, 52, 33]
listen_ms: 6
harmony: 2.5
cc: {temperature: 21, answer_length: 22, panic: 23, mutate: 24, density: 25, loop: 26}
"""
    )
    config = load_live_config(path, {})
    assert config.mode == "accompany"
    assert (config.input_port, config.output_port) == ("Keystation", "IAC")
    assert (config.input_channel_index, config.output_channel_index) == (1, 9)
    assert config.bpm == 96.0 and isinstance(config.bpm, float)
    assert config.answer_length == AnswerLength("bars", 4)
    assert (config.cc.temperature, config.cc.mutate) == (21, 24)
    assert config.lookahead_seconds == 2.0
    assert config.backing_channels == (3, 4, 5) and config.backing_velocity == (90, 70, 80)
    assert config.backing_ports and config.density == -1.5 and config.loop_bars == 4
    assert (config.cc.density, config.cc.loop) == (25, 26)
    assert config.backing_programs == (52, 52, 33)
    assert config.listen_ms == 6.0 and config.harmony == 2.5


def test_overrides_win_over_the_file(live_yaml):
    path = live_yaml("temperature: 0.5\noutput_channel: 3\n")
    config = load_live_config(path, {"temperature": 1.5, "output_channel": None})
    assert config.temperature == 1.5
    assert config.output_channel == 3  # None: an option not given on the command line


@pytest.mark.parametrize("overrides", [{"cc.panic": 30}, {"cc": {"panic": 30}}])
def test_overrides_reach_the_cc_map(overrides):
    assert load_live_config(None, overrides).cc.panic == 30


def test_dashed_names_are_accepted(live_yaml):
    path = live_yaml("output-channel: 5\nquantize-answer-to: beat\n")
    config = load_live_config(path, {})
    assert (config.output_channel, config.quantize_answer_to) == (5, "beat")


@pytest.mark.parametrize(
    "text, message",
    [
        ("output_channel: 17", "live.yaml: output_channel: must be 1..16, got 17"),
        ("output_channel: 0", "live.yaml: output_channel: must be 1..16, got 0"),
        ("output_channel: two", "live.yaml: output_channel: expected a whole number, got 'two'"),
        ("input_channel: 1.5", "live.yaml: input_channel: expected a whole number, got 1.5"),
        ("program: 128", "live.yaml: program: must be 0..127, got 128"),
        ("mode: jam", "live.yaml: mode: must be one of call-response, accompany, backing"),
        ("temperature: 3", "live.yaml: temperature: must be 0.1..2, got 3"),
        ("temperature: 0.05", "live.yaml: temperature: must be 0.1..2, got 0.05"),
        ("temperature: hot", "live.yaml: temperature: expected a number, got 'hot'"),
        ("top_p: 0", "live.yaml: top_p: must be (0..1, got 0"),
        ("top_k: -1", "live.yaml: top_k: must be at least 0, got -1"),
        ("bpm: 1000", "live.yaml: bpm: must be 20..400, got 1000"),
        ("bpm: true", "live.yaml: bpm: expected a number, got True"),
        ("passthrough: 1", "live.yaml: passthrough: expected true or false, got 1"),
        ("quantize_answer_to: 16th", "live.yaml: quantize_answer_to: must be one of none, beat"),
        ("on_interrupt: pause", "live.yaml: on_interrupt: must be one of stop, overlap"),
        ("end_cc: 64", "live.yaml: end_cc: 64 is the sustain pedal"),
        ("end_cc: 200", "live.yaml: end_cc: must be 0..127, got 200"),
        ("answer_length: 4", "live.yaml: answer_length: expected same-as-call, 'N bars' or 'N s'"),
        ("answer_length: 0 bars", "live.yaml: answer_length: bars must be a whole number"),
        ("answer_length: lots", "live.yaml: answer_length: expected same-as-call"),
        ("silence_beats: 0", "live.yaml: silence_beats: must be 0.25..64, got 0"),
        ("lookahead_seconds: 0", "live.yaml: lookahead_seconds: must be 0.05..10, got 0"),
        ("soundfont: ''", "live.yaml: soundfont: expected a non-empty string"),
        ("tempo: 120", "live.yaml: tempo: unknown setting (did you mean bpm?)"),
        ("temprature: 1.0", "live.yaml: temprature: unknown setting (did you mean temperature?)"),
        ("cc: {volume: 7}", "live.yaml: cc.volume: unknown setting"),
        ("cc: {panic: 64}", "live.yaml: cc.panic: 64 is the sustain pedal"),
        ("cc: 21", "live.yaml: cc: expected a mapping of knob: CC number, got 21"),
        ("cc: {panic: 20}\nend_cc: 20", "live.yaml: cc.panic: CC 20 is already end_cc"),
        ("cc: {panic: 20, mutate: 20}", "live.yaml: cc.mutate: CC 20 is already cc.panic"),
        ("follow_clock: true\nsend_clock: true", "live.yaml: send_clock: cannot both follow"),
        ("backing_channels: [2, 3, 17]", "live.yaml: backing_channels: must be 1..16, got 17"),
        ("backing_channels: 2,3,3", "live.yaml: backing_channels: each value once, got 2, 3, 3"),
        ("backing_channels: [2, bass]", "live.yaml: backing_channels: expected a whole number"),
        ("backing_channels: []", "live.yaml: backing_channels: expected at least one value"),
        ("backing_velocity: 0", "live.yaml: backing_velocity: must be 1..127, got 0"),
        ("backing_ports: maybe", "live.yaml: backing_ports: expected true or false"),
        ("density: 3.5", "live.yaml: density: must be -3..3, got 3.5"),
        ("density: busy", "live.yaml: density: expected a number, got 'busy'"),
        ("loop_bars: 17", "live.yaml: loop_bars: must be 0..16, got 17"),
        ("backing_programs: [48, 128]", "live.yaml: backing_programs: must be 0..127, got 128"),
        ("listen_ms: -1", "live.yaml: listen_ms: must be 0..50, got -1"),
        ("harmony: 9", "live.yaml: harmony: must be 0..4, got 9"),
        ("style_guidance: 12", "live.yaml: style_guidance: must be 0..10, got 12"),
        ("loop_bars: 1.5", "live.yaml: loop_bars: expected a whole number, got 1.5"),
        ("cc: {density: 64}", "live.yaml: cc.density: 64 is the sustain pedal"),
        ("cc: {density: 20, loop: 20}", "live.yaml: cc.loop: CC 20 is already cc.density"),
        ("backing_ports: true\nbacking_channels: [1, 2, 3]",
         "live.yaml: backing_channels: channel 1 is output_channel; with backing_ports"),
    ],
)
def test_a_bad_value_names_the_field(live_yaml, text, message):
    with pytest.raises(ConfigError) as error:
        load_live_config(live_yaml(text), {})
    assert str(error.value).startswith(message)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"output_channel": 17}, "output_channel: must be 1..16, got 17"),
        ({"temperature": "2.5"}, "temperature: must be 0.1..2, got 2.5"),
        ({"cc.temperature": 128}, "cc.temperature: must be 0..127, got 128"),
        ({"volume": 3}, "volume: unknown setting"),
    ],
)
def test_a_bad_override_names_the_field(overrides, message):
    with pytest.raises(ConfigError, match="^" + message.replace("(", r"\(").replace(".", r"\.")):
        load_live_config(None, overrides)


@pytest.mark.parametrize(
    "text, message",
    [
        ("", None),
        ("- a\n- b", "live.yaml: expected a mapping"),
        ("a: [", "live.yaml: not valid YAML"),
    ],
)
def test_the_file_itself(live_yaml, text, message):
    path = live_yaml(text)
    if message is None:
        assert load_live_config(path, {}) == LiveConfig()
    else:
        with pytest.raises(ConfigError, match=message):
            load_live_config(path, {})


def test_a_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="no such config file"):
        load_live_config(tmp_path / "nope.yaml", {})


def test_yaml_tags_are_not_executed(live_yaml):
    path = live_yaml("bundle: !!python/object/apply:os.system ['echo pwned']")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_live_config(path, {})


@pytest.mark.parametrize("value, temperature", [(0, 0.1), (127, 2.0), (64, 0.1 + 1.9 * 64 / 127)])
def test_temperature_cc_maps_like_magenta(value, temperature):
    assert temperature_from_cc(value) == pytest.approx(temperature)


@pytest.mark.parametrize("value, density", [(0, -3.0), (1, -3.0), (64, 0.0), (127, 3.0)])
def test_density_cc_is_centred(value, density):
    assert density_from_cc(value) == pytest.approx(density)


@pytest.mark.parametrize(
    "settings, parts, channels",
    [
        ({}, 3, [2, 3, 4]),
        ({"output_channel": 8}, 3, [9, 11, 12]),  # never 10, General MIDI's drums
        ({"output_channel": 15}, 2, [16, 1]),
        ({"backing_channels": "5, 6 7"}, 3, [5, 6, 7]),
        ({"backing_channels": [12]}, 1, [12]),
    ],
)
def test_backing_channels(settings, parts, channels):
    config = load_live_config(None, settings)
    assert [c + 1 for c in config.backing_channel_indices(parts)] == channels


def test_backing_channels_and_velocities_are_one_per_part(live_yaml):
    config = load_live_config(live_yaml("backing_channels: [2, 3]\nbacking_velocity: [90, 70]"))
    assert config.backing_velocities(2) == [90, 70]
    with pytest.raises(ConfigError, match="^backing_channels: the bundle has 3 backing parts"):
        config.backing_channel_indices(3)
    with pytest.raises(ConfigError, match="^backing_velocity: the bundle has 3 backing parts"):
        config.backing_velocities(3)
    assert load_live_config(None, {"backing_velocity": "100"}).backing_velocities(3) == [100] * 3


@pytest.mark.parametrize("value, bars", [(0, 1), (127, 16), (64, 8)])
def test_answer_length_cc(value, bars):
    assert answer_bars_from_cc(value) == bars


@pytest.mark.parametrize(
    "text, call_seconds, expected",
    [
        ("same-as-call", 3.3, 3.3),
        ("2 bars", 3.3, 4.0),
        ("1 bar", 1.0, 2.0),
        ("6.5 s", 3.3, 6.5),
        ("10 seconds", 0.0, 10.0),
    ],
)
def test_answer_length_in_seconds(text, call_seconds, expected):
    grid = BeatGrid(120.0, 0.0, beats_per_bar=4)
    assert AnswerLength.parse(text).seconds(call_seconds, grid) == pytest.approx(expected)


@pytest.mark.parametrize("text", ["same-as-call", "4 bars", "6.5 s"])
def test_answer_length_round_trips_as_text(text):
    assert str(AnswerLength.parse(text)) == text
