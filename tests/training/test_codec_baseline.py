"""The codec's baseline: what survives band-limiting and mu-law, on tones of known pitch."""

from __future__ import annotations

import numpy as np
import pytest

from cadenza.training.codec_baseline import baseline, mu_law, resample

RATE = 24000


def tone(hz: float, seconds: float = 1.0) -> np.ndarray:
    t = np.arange(int(RATE * seconds)) / RATE
    return (0.5 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def snr_db(output: np.ndarray, target: np.ndarray) -> float:
    return float(10 * np.log10(np.sum(target**2) / np.sum((output - target) ** 2)))


def test_resampling_keeps_a_tone_below_both_nyquists():
    x = tone(200)
    np.testing.assert_allclose(resample(resample(x, 1000), RATE), x, atol=1e-4)


def test_resampling_removes_a_tone_above_the_low_nyquist():
    assert np.abs(resample(resample(tone(3000), 1000), RATE)).max() < 1e-4


@pytest.mark.parametrize(("bits", "at_least_db"), [(8, 30.0), (4, 10.0)])
def test_mu_law_error_shrinks_with_bits(bits, at_least_db):
    x = tone(440)
    assert snr_db(mu_law(x, bits), x) > at_least_db


def test_baseline_at_the_codec_rate_keeps_the_bass_and_loses_the_treble():
    coded, low_rate = baseline(tone(100) + tone(2000), RATE, bits_per_second=16000, bits=8)
    assert low_rate == 2000.0  # 16 kbit/s of 8-bit samples: 2 kHz, band-limited to 1 kHz
    assert snr_db(coded, tone(100)) > 25
    assert coded.shape == (RATE,)
