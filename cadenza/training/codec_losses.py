"""The codec's reconstruction losses and its two held-out figures, in torch.

- Multi-scale mel loss (EnCodec): log-mel spectrograms at windows of 64 to 2048 samples,
  L1 on the mel magnitudes plus L2 on their logs, averaged over the scales. Small windows
  judge attacks, large ones pitch.
- Multi-resolution STFT loss (Parallel WaveGAN): spectral convergence plus L1 on the log
  magnitudes at three FFT sizes.
- `mel_distance` (mean L1 between log-mel spectrograms) and `si_sdr` (scale-invariant
  signal-to-distortion ratio, dB): what the README reports on held-out clips, for the
  codec and for a plain baseline at the same bit rate.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

LOG_FLOOR = 1e-5  # -100 dB: silence in both signals is no error


def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int) -> torch.Tensor:
    """(n_mels, n_fft // 2 + 1) triangular filters evenly spaced on the HTK mel scale from
    0 Hz to Nyquist, each with unit area so that a filter's width does not weigh it."""

    def mel(hz: torch.Tensor) -> torch.Tensor:
        return 2595.0 * torch.log10(1.0 + hz / 700.0)

    def hz(m: torch.Tensor) -> torch.Tensor:
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)

    bins = torch.linspace(0, sample_rate / 2, n_fft // 2 + 1, dtype=torch.float64)
    edges = hz(
        torch.linspace(
            0.0, float(mel(torch.tensor(sample_rate / 2))), n_mels + 2, dtype=torch.float64
        )
    )
    low, centre, high = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (bins - low) / (centre - low)
    falling = (high - bins) / (high - centre)
    filters = torch.clamp(torch.minimum(rising, falling), min=0.0)
    # A filter narrower than one FFT bin would be empty: give it its nearest bin.
    empty = filters.sum(dim=1) == 0
    nearest = torch.argmin((bins[None, :] - centre).abs(), dim=1)
    filters[empty, nearest[empty]] = 1.0
    return (filters / filters.sum(dim=1, keepdim=True)).float()


def _magnitude(audio: torch.Tensor, n_fft: int, hop: int) -> torch.Tensor:
    """(B, 1 or none, samples) -> (B, n_fft // 2 + 1, frames) STFT magnitudes."""
    window = torch.hann_window(n_fft, device=audio.device, dtype=audio.dtype)
    spec = torch.stft(
        audio.reshape(-1, audio.shape[-1]), n_fft, hop, window=window, return_complex=True
    )
    return spec.abs()


class MelSpectrogram(nn.Module):
    def __init__(self, sample_rate: int, n_fft: int, n_mels: int):
        super().__init__()
        self.n_fft, self.hop = n_fft, n_fft // 4
        self.register_buffer(
            "filters", mel_filterbank(sample_rate, n_fft, n_mels), persistent=False
        )

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        return self.filters @ _magnitude(audio, self.n_fft, self.hop)


class MultiScaleMelLoss(nn.Module):
    """EnCodec's reconstruction loss in the frequency domain: windows 2^6 .. 2^11."""

    def __init__(self, sample_rate: int, scales: range = range(6, 12), n_mels: int = 64):
        super().__init__()
        self.mels = nn.ModuleList(
            MelSpectrogram(sample_rate, 2**s, min(n_mels, 2**s // 4)) for s in scales
        )

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        total = output.new_zeros(())
        for mel in self.mels:
            x, y = mel(output), mel(target)
            log_x, log_y = torch.log(x.clamp(min=LOG_FLOOR)), torch.log(y.clamp(min=LOG_FLOOR))
            total = total + F.l1_loss(x, y) + F.mse_loss(log_x, log_y)
        return total / len(self.mels)


class MultiResolutionSTFTLoss(nn.Module):
    def __init__(self, ffts: tuple[int, ...] = (512, 1024, 2048)):
        super().__init__()
        self.ffts = ffts

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        total = output.new_zeros(())
        for n_fft in self.ffts:
            x, y = _magnitude(output, n_fft, n_fft // 4), _magnitude(target, n_fft, n_fft // 4)
            convergence = torch.linalg.norm(y - x) / torch.linalg.norm(y).clamp(min=LOG_FLOOR)
            log_l1 = F.l1_loss(torch.log(x.clamp(min=LOG_FLOOR)), torch.log(y.clamp(min=LOG_FLOOR)))
            total = total + convergence + log_l1
        return total / len(self.ffts)


@torch.no_grad()
def mel_distance(output: torch.Tensor, target: torch.Tensor, sample_rate: int) -> float:
    """Mean L1 between log-mel spectrograms (natural log, 64 mels, 1024-sample windows)."""
    mel = MelSpectrogram(sample_rate, 1024, 64).to(target.device)
    log_x = torch.log(mel(output).clamp(min=LOG_FLOOR))
    log_y = torch.log(mel(target).clamp(min=LOG_FLOOR))
    return float((log_x - log_y).abs().mean())


@torch.no_grad()
def si_sdr(output: torch.Tensor, target: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Scale-invariant SDR in dB per signal (Le Roux et al. 2019): the output projected on
    the zero-mean target, that projection's energy over the rest's."""
    x = output.reshape(-1, output.shape[-1]).double()
    y = target.reshape(-1, target.shape[-1]).double()
    x, y = x - x.mean(dim=1, keepdim=True), y - y.mean(dim=1, keepdim=True)
    scale = (x * y).sum(dim=1, keepdim=True) / ((y * y).sum(dim=1, keepdim=True) + eps)
    projection = scale * y
    noise = x - projection
    ratio = (projection.pow(2).sum(dim=1) + eps) / (noise.pow(2).sum(dim=1) + eps)
    return (10 * torch.log10(ratio)).float()


def bits_per_second(num_codebooks: int, codebook_size: int, frame_rate: float) -> float:
    """The codec's bit rate, for a baseline at the same rate: K * log2(N) bits per frame."""
    return num_codebooks * math.log2(codebook_size) * frame_rate
