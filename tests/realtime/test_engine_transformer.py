"""The live engine with the transformer plugin, on fake ports (tests/realtime/helpers.py: the
engine's behaviour, whatever carries the MIDI; test_engine.py shows an answer through real
JACK ports): it answers, its style knob turns while it plays, and the plugin can be switched
live."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from cadenza.errors import ConfigError
from cadenza.realtime.live import live_generator
from tests.realtime.helpers import (
    PHRASE,
    FakeRunningEngine,
    answer_played,
    feed_phrase,
    has_note_on,
    live_config,
    note_ons,
    unique,
    wait_for,
)


def test_the_transformer_answers_a_phrase(tiny_transformer_bundle):
    with FakeRunningEngine(tiny_transformer_bundle, answer_length="1 s", style="bach") as running:
        phrase_end = feed_phrase(running.input)
        running.output.wait_until(has_note_on)
        wait_for(lambda: answer_played(running.engine))
        records = running.engine.mode.performer.records
        assert running.engine.generator.plugin == "transformer"
    first_on = min(t for t, _ in note_ons(running.output.events))
    assert first_on > phrase_end
    assert len(records) == 1 and records[0].events
    assert len(records[0].primer) >= 2 * len(PHRASE)  # the call, as the transformer's context


def test_the_style_knob_turns_by_cc_and_by_key(tiny_transformer_bundle):
    with FakeRunningEngine(tiny_transformer_bundle, **{"cc.style": 21}) as running:
        engine = running.engine
        assert engine.mode.style is None and engine.controls.styles == ["bach"]
        running.input.send([0xB0, 21, 127])  # the top of the range: the last style
        wait_for(lambda: engine.mode.style == "bach", timeout=5)
        wait_for(lambda: engine.generator.style == "bach")  # the generator's own thread
        engine.controls.turn_style(+1)  # the terminal's `s`: round to untagged
        assert engine.mode.style is None
        wait_for(lambda: engine.generator.style is None)  # the generator's own thread applied it


def test_a_plugin_switch_mid_session_keeps_answering(tiny_bundle, tiny_transformer_bundle,
                                                     monkeypatch, tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    (models / "transformer").symlink_to(tiny_transformer_bundle)
    monkeypatch.setenv("CADENZA_MODELS", str(models))
    with FakeRunningEngine(tiny_bundle, answer_length="0.6 s") as running:
        running.engine.controls.next_bundle()  # the terminal's `n` (loads on a thread)
        wait_for(lambda: running.engine.generator.plugin == "transformer")
        feed_phrase(running.input, PHRASE[:4])
        running.output.wait_until(has_note_on)
        wait_for(lambda: answer_played(running.engine))
        assert running.engine.mode.performer.records[-1].events


def test_an_unknown_style_is_one_line_naming_the_field(tiny_transformer_bundle, jack_server):
    result = subprocess.run(
        [sys.executable, "-m", "cadenza.cli", "live", "--bundle", str(tiny_transformer_bundle),
         "--quiet", "--port-name", unique("cadenza"), "--style", "jazz"],
        capture_output=True, text=True, timeout=60,
        env={**os.environ, "CADENZA_MIDI_API": "jack"})
    assert result.returncode == 2
    assert result.stderr.strip().startswith("cadenza: error: style:"), result.stderr
    assert "no style 'jazz'" in result.stderr and "bach" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_style_guidance_reaches_the_generator_and_a_plugin_without_it_is_refused(
    tiny_transformer_bundle, tiny_bundle
):
    with FakeRunningEngine(tiny_transformer_bundle, answer_length="1 s", style="bach",
                           style_guidance=2.0) as running:
        assert running.engine.generator.guiding
        feed_phrase(running.input)
        running.output.wait_until(has_note_on)
    with pytest.raises(ConfigError, match="^style_guidance: .*performance-rnn plugin has no"):
        live_generator(live_config(tiny_bundle, style_guidance=2.0))
