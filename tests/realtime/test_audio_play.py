"""`cadenza audio` to the sound card: a codec-lm bundle streamed to the test JACK server."""

from __future__ import annotations

import pytest

from cadenza.realtime.audio_play import load_codec_lm, play, prime

pytest.importorskip("soxr")


def test_a_stream_to_jack_of_four_rings_has_no_underruns(audio, tiny_codec_lm_bundle,
                                                          text_encoder):
    # 2 s: four times play()'s 0.5 s ring, so the model must keep up after the prefill.
    lm = load_codec_lm(str(tiny_codec_lm_bundle), seed=2)
    lm.text_encoder = text_encoder
    prime(lm, "a string ensemble playing a Bach chorale", None)
    run = play(lm, 2.0, device=audio, status=False)
    assert run.underruns == 0
    assert run.peak > 1e-3  # not silence
    assert run.seconds == pytest.approx(2.0, abs=0.05)


def test_stream_is_ended_by_the_quit_knob(audio, tiny_codec_lm_bundle):
    from cadenza.realtime.audio_knobs import AudioKnobs

    lm = load_codec_lm(str(tiny_codec_lm_bundle), seed=2)
    prime(lm, None, None)
    knobs = AudioKnobs(lm, temperature="knobs.temperature", cfg="cfg")
    knobs.press("q")
    run = play(lm, None, device=audio, knobs=knobs, status=False)  # endless, but for q
    assert run.seconds < 5.0


def test_knobs_turn_the_plugin_itself(tiny_codec_lm_bundle):
    from cadenza.realtime.audio_knobs import AudioKnobs

    lm = load_codec_lm(str(tiny_codec_lm_bundle), seed=2)
    knobs = AudioKnobs(lm, temperature="knobs.temperature", cfg="cfg")
    before_t, before_cfg = lm.knobs.temperature, lm.cfg
    knobs.press("+")
    knobs.press("]")
    assert lm.knobs.temperature > before_t and lm.cfg > before_cfg
