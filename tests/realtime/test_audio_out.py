"""StreamPlayer: generated audio at the codec's 24 kHz played on the test JACK server's real
audio device (48 kHz, so every test goes through the resampler)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import numpy as np
import pytest

from cadenza.errors import CadenzaError
from cadenza.realtime.stream_player import StreamPlayer

pytest.importorskip("soxr")

SOURCE_RATE = 24000
CHUNK = 1920  # 80 ms: a codec step's worth of samples
AMPLITUDE = 0.5
FINISH_TIMEOUT = 30.0  # seconds: a functional limit ("never finished"), not a latency target
STREAM_SECONDS = 2.0  # four times StreamPlayer's default ring (ahead=0.5 s)


def tone(seconds: float, closed: list[bool] | None = None) -> Iterator[np.ndarray]:
    """A 440 Hz sine in CHUNK-sample chunks, each computed when asked for (as a model would);
    `closed` gets True when the generator is closed or runs out."""
    phase = 2 * np.pi * 440 / SOURCE_RATE
    try:
        for start in range(0, round(seconds * SOURCE_RATE), CHUNK):
            n = min(CHUNK, round(seconds * SOURCE_RATE) - start)
            yield (AMPLITUDE * np.sin(phase * np.arange(start, start + n))).astype(np.float32)
    finally:
        if closed is not None:
            closed.append(True)


def test_a_stream_of_four_rings_plays_without_underruns(audio):
    # 2 s: four times the player's 0.5 s ring, so the producer must keep up after the prefill.
    with StreamPlayer(tone(STREAM_SECONDS), SOURCE_RATE, device=audio) as player:
        assert player.wait(FINISH_TIMEOUT)
        assert player.error is None
        assert player.underruns == 0
        assert player.peak > AMPLITUDE * 0.9
        # Every source sample, resampled: 2 s at the card's rate, give or take the filter edge.
        assert abs(player.frames_played - STREAM_SECONDS * player.sample_rate) <= (
            player.sample_rate // 100)


def test_an_exhausted_source_ends_the_stream_and_is_closed(audio):
    closed: list[bool] = []
    player = StreamPlayer(tone(0.3, closed), SOURCE_RATE, device=audio)
    try:
        assert player.wait(FINISH_TIMEOUT)
        assert player.finished and closed == [True]
        # All of it was played, then silence: the count stays.
        played = player.frames_played
        assert abs(played - round(0.3 * player.sample_rate)) <= 2
        time.sleep(0.2)
        assert player.frames_played == played
    finally:
        player.close()


def test_a_failing_source_becomes_the_error(audio, capfd):
    def failing() -> Iterator[np.ndarray]:
        yield from tone(0.2)
        raise RuntimeError("the model fell over")

    with StreamPlayer(failing(), SOURCE_RATE, device=audio) as player:
        assert player.wait(FINISH_TIMEOUT)
        assert isinstance(player.error, RuntimeError)
        assert str(player.error) == "the model fell over"
    assert "Traceback" not in capfd.readouterr().err


def test_close_stops_an_endless_source_and_closes_it(audio):
    closed: list[bool] = []
    player = StreamPlayer(tone(3600.0, closed), SOURCE_RATE, device=audio)
    assert not player.wait(0.3)
    player.close()
    player.close()
    assert player.finished and closed == [True]
    assert player.error is None


def test_unknown_audio_device_is_a_one_line_error(audio):
    with pytest.raises(CadenzaError, match="no-such-card") as info:
        StreamPlayer(tone(1.0), SOURCE_RATE, device="no-such-card")
    assert "\n" not in str(info.value)
