"""The plain baseline the codec is compared with: band-limited downsampling and mu-law.

At the codec's bit rate (K * log2(N) * frames per second: 2 kbit/s by default) the baseline
keeps `bits_per_second / bits` samples a second of `bits`-bit mu-law, then resamples back.
Resampling is by the FFT of the whole clip (an ideal low-pass), so the baseline loses only
what its bit rate cannot carry. numpy only.
"""

from __future__ import annotations

import numpy as np


def resample(audio: np.ndarray, samples: int) -> np.ndarray:
    """`audio` (..., n) to `samples` samples over the same duration, band-limited to the
    lower of the two Nyquist frequencies."""
    n = audio.shape[-1]
    spectrum = np.fft.rfft(audio, axis=-1)
    keep = min(spectrum.shape[-1], samples // 2 + 1)
    out = np.zeros((*audio.shape[:-1], samples // 2 + 1), dtype=spectrum.dtype)
    out[..., :keep] = spectrum[..., :keep]
    return (np.fft.irfft(out, samples, axis=-1) * (samples / n)).astype(audio.dtype)


def mu_law(audio: np.ndarray, bits: int) -> np.ndarray:
    """Compand, quantise to 2^bits levels and expand: G.711's mu-law with mu = 2^bits - 1."""
    mu = 2**bits - 1
    x = np.clip(audio, -1.0, 1.0)
    companded = np.sign(x) * np.log1p(mu * np.abs(x)) / np.log1p(mu)
    levels = np.round((companded + 1) / 2 * mu) / mu * 2 - 1
    return (np.sign(levels) * np.expm1(np.abs(levels) * np.log1p(mu)) / mu).astype(audio.dtype)


def baseline(
    audio: np.ndarray, sample_rate: int, bits_per_second: float, bits: int = 8
) -> tuple[np.ndarray, float]:
    """(`audio` (..., n) through the baseline, same length; the low rate it kept, in Hz):
    `bits_per_second / bits` samples a second of `bits`-bit mu-law, band-limited to half."""
    n = audio.shape[-1]
    low_rate = bits_per_second / bits
    kept = max(int(round(n * low_rate / sample_rate)), 2)
    coded = mu_law(resample(audio, kept), bits)
    return resample(coded, n), low_rate
