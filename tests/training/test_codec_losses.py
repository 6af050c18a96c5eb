"""The codec's losses and figures on signals whose answers are known."""

from __future__ import annotations

import pytest
import torch

from cadenza.training.codec_losses import (
    MultiResolutionSTFTLoss,
    MultiScaleMelLoss,
    bits_per_second,
    mel_distance,
    mel_filterbank,
    si_sdr,
)

RATE = 24000


def tone(hz: float, seconds: float = 0.5) -> torch.Tensor:
    t = torch.arange(int(RATE * seconds)) / RATE
    return (0.3 * torch.sin(2 * torch.pi * hz * t)).reshape(1, 1, -1)


def test_mel_filters_are_all_used_and_rise_in_frequency():
    filters = mel_filterbank(RATE, 64, 16)  # small windows: filters narrower than a bin
    assert (filters.sum(dim=1) > 0.99).all()
    peaks = filters.argmax(dim=1)
    assert (peaks[1:] >= peaks[:-1]).all()


@pytest.mark.parametrize("loss", [MultiScaleMelLoss(RATE), MultiResolutionSTFTLoss()])
def test_loss_is_zero_for_the_target_and_grows_with_the_error(loss):
    target = tone(440) + 0.05 * torch.randn(
        1, 1, RATE // 2, generator=torch.Generator().manual_seed(0)
    )
    noise = torch.randn_like(target, generator=None)
    values = [float(loss(target + a * noise, target)) for a in (0.0, 0.01, 0.1)]
    assert values[0] < 1e-6
    assert values[0] < values[1] < values[2]


def test_mel_loss_gives_a_gradient():
    output = tone(440).requires_grad_(True)
    MultiScaleMelLoss(RATE)(output, tone(660)).backward()
    assert output.grad is not None and output.grad.abs().sum() > 0


def test_mel_distance_tells_a_fifth_from_a_near_unison():
    # Over one shared noise bed, so that the empty bands (at the log floor) do not dominate.
    bed = 0.01 * torch.randn(1, 1, RATE // 2, generator=torch.Generator().manual_seed(2))
    reference = tone(440) + bed
    fifth = mel_distance(tone(660) + bed, reference, RATE)
    near = mel_distance(tone(445) + bed, reference, RATE)
    assert fifth > 2 * near


def test_si_sdr_ignores_scale():
    target = tone(440)
    assert float(si_sdr(0.25 * target, target)) > 80


def test_si_sdr_of_added_noise_is_its_snr():
    g = torch.Generator().manual_seed(1)
    target = torch.randn(1, 1, RATE, generator=g)
    noise = torch.randn(1, 1, RATE, generator=g)
    noise = noise - (noise * target).sum() / (target * target).sum() * target  # orthogonal
    noise = noise * (target.norm() / noise.norm()) * 10 ** (-20 / 20)  # 20 dB below
    assert float(si_sdr(target + noise, target)) == pytest.approx(20.0, abs=0.1)


def test_bit_rate_of_the_default_codec():
    assert bits_per_second(4, 1024, 50.0) == 2000.0  # 2 kbit/s
