"""The live engine with the transformer plugin, through a real JACK server: it answers, its
style knob turns while it plays, and the plugin can be switched live."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from tests.realtime.conftest import unique
from tests.realtime.test_engine import NOTE_ON, PHRASE, RunningEngine, connect, play_phrase


def answered(recorder) -> None:
    recorder.wait_until(lambda messages: any(m[0] & 0xF0 == NOTE_ON for m in messages))


def test_the_transformer_answers_a_phrase(tiny_transformer_bundle, player, recorder):
    with RunningEngine(tiny_transformer_bundle, answer_length="1 s", style="bach") as running:
        connect(running, player, recorder)
        phrase_end = play_phrase(player)
        answered(recorder)
        time.sleep(1.2)
        records = running.engine.mode.performer.records
        assert running.engine.generator.plugin == "transformer"
    first_on = min(t for t, m in recorder.events if m[0] & 0xF0 == NOTE_ON and m[2] > 0)
    assert first_on > phrase_end
    assert len(records) == 1 and records[0].events
    assert len(records[0].primer) >= 2 * len(PHRASE)  # the call, as the transformer's context


def test_the_style_knob_turns_by_cc_and_by_key(tiny_transformer_bundle, player):
    with RunningEngine(tiny_transformer_bundle, **{"cc.style": 21}) as running:
        connect(running, player)
        engine = running.engine
        assert engine.mode.style is None and engine.controls.styles == ["bach"]
        player.send([0xB0, 21, 127])  # the top of the range: the last style
        give_up = time.monotonic() + 5
        while engine.mode.style != "bach" and time.monotonic() < give_up:
            time.sleep(0.01)
        assert engine.mode.style == "bach"
        engine.controls.turn_style(+1)  # the terminal's `s`: round to untagged
        assert engine.mode.style is None
        time.sleep(0.2)
        assert engine.generator.style is None  # the generator's own thread applied it


def test_a_plugin_switch_mid_session_keeps_answering(tiny_bundle, tiny_transformer_bundle,
                                                     player, recorder, monkeypatch, tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    (models / "transformer").symlink_to(tiny_transformer_bundle)
    monkeypatch.setenv("CADENZA_MODELS", str(models))
    with RunningEngine(tiny_bundle, answer_length="0.6 s") as running:
        connect(running, player, recorder)
        running.engine.controls.next_bundle()  # the terminal's `n`
        assert running.engine.generator.plugin == "transformer"
        play_phrase(player, PHRASE[:4])
        answered(recorder)
        time.sleep(0.8)
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
