"""The neural audio codec of the codec-lm plugin: an encoder/decoder around a residual vector
quantiser, after EnCodec / SoundStream (audiocraft's modules, made small).

audio (B, 1, samples) --encoder--> latents (B, D, frames) --RVQ--> codes (B, K, frames)
codes --RVQ decode--> latents --decoder--> audio

Two architectures: "seanet" (EnCodec's: convolutions at the sample rate, strided down to the
frame rate and back up) and "stft" (the default: the log-magnitude spectrum of each frame's
window in, convolutions at the frame rate only, each frame's magnitude and phase out through
a fixed inverse DFT and overlap-add, as Vocos's decoder). The second does some 20x less work
a second of audio, and on a CPU trains to a better codec in minutes than the first in hours.

Both are causal (padded on the left only), so the first n frames decode to exactly the first
n * hop samples whatever follows: the decoder can run in chunks as the LM produces frames,
with no seams. The quantiser's codebooks are not trained by gradients but by exponential
moving averages of the vectors assigned to them (VQ-VAE-2 / SoundStream), initialised by
k-means on the first batch, and a code that falls out of use is restarted on a vector of the
current batch, so that no codebook entry is wasted (cadenza.training.codebook).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from cadenza.training.codebook import EMACodebook


@dataclass
class CodecConfig:
    sample_rate: int = 24000
    channels: int = 32  # after the first convolution; doubled at every downsampling
    strides: tuple[int, ...] = (3, 4, 5, 8)  # hop 480: 50 frames per second at 24 kHz
    latent_dim: int = 128
    num_codebooks: int = 4
    codebook_size: int = 1024
    ema_decay: float = 0.99
    kmeans_iters: int = 10
    # A code whose EMA count falls below this (in vectors per batch) is restarted.
    dead_code_threshold: float = 2.0
    commitment_weight: float = 1.0
    residual_dilations: tuple[int, ...] = field(default=(1, 3, 9))
    # "seanet": convolutions at the sample rate, strided down to the frames (EnCodec's);
    # "stft": every layer at the frame rate, between a fixed STFT and its inverse (as Vocos's
    # decoder), `frame_channels` wide and `frame_blocks` deep: some 20x less work a second of
    # audio, which is what a CPU can train.
    architecture: str = "stft"
    frame_channels: int = 128
    frame_blocks: int = 6

    @property
    def hop(self) -> int:
        return math.prod(self.strides)

    @property
    def frame_rate(self) -> float:
        return self.sample_rate / self.hop


# ------------------------------------------------------------------------------------------
class CausalConv1d(nn.Conv1d):
    """A Conv1d padded on the left by what its kernel and dilation look back."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pad = (self.kernel_size[0] - 1) * self.dilation[0]
        return super().forward(F.pad(x, (pad, 0)))


class CausalConvTranspose1d(nn.ConvTranspose1d):
    """A ConvTranspose1d (kernel 2 * stride) trimmed on the right: `frames` in, exactly
    `frames * stride` out, each output sample depending on its own and earlier frames."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # n frames give n * stride + (kernel - stride) samples: drop the last stride, a
        # constant slice, so that the exported graph has no shape arithmetic.
        return super().forward(x)[..., : -self.stride[0]]


class ResidualUnit(nn.Module):
    def __init__(self, channels: int, dilation: int):
        super().__init__()
        self.block = nn.Sequential(
            nn.ELU(),
            CausalConv1d(channels, channels // 2, 3, dilation=dilation),
            nn.ELU(),
            CausalConv1d(channels // 2, channels, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


class FramedEncoder(nn.Module):
    """(B, 1, samples) -> (B, latent_dim, ceil(samples / hop)): an encoder of whole frames,
    the end padded up to a multiple of the hop."""

    hop: int

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        return self.whole_frames(F.pad(audio, (0, -audio.shape[-1] % self.hop)))

    def whole_frames(self, audio: torch.Tensor) -> torch.Tensor:
        """`forward` of audio whose length is a multiple of the hop (the exported graph's
        input: padding by a length traced into a graph would freeze it to one length)."""
        raise NotImplementedError


class Encoder(FramedEncoder):
    """SEANet's: causal convolutions at the sample rate, strided down to the frames."""

    def __init__(self, config: CodecConfig):
        super().__init__()
        c = config.channels
        layers: list[nn.Module] = [CausalConv1d(1, c, 7)]
        for stride in config.strides:
            layers += [ResidualUnit(c, d) for d in config.residual_dilations]
            layers += [nn.ELU(), CausalConv1d(c, 2 * c, 2 * stride, stride=stride)]
            c *= 2
        layers += [nn.ELU(), CausalConv1d(c, config.latent_dim, 3)]
        self.net = nn.Sequential(*layers)
        self.hop = config.hop

    def whole_frames(self, audio: torch.Tensor) -> torch.Tensor:
        return self.net(audio)  # a causal strided conv needs whole frames


class Decoder(nn.Module):
    """(B, latent_dim, frames) -> (B, 1, frames * hop), the encoder mirrored."""

    def __init__(self, config: CodecConfig):
        super().__init__()
        c = config.channels * 2 ** len(config.strides)
        layers: list[nn.Module] = [CausalConv1d(config.latent_dim, c, 7)]
        for stride in reversed(config.strides):
            layers += [nn.ELU(), CausalConvTranspose1d(c, c // 2, 2 * stride, stride=stride)]
            c //= 2
            layers += [ResidualUnit(c, d) for d in config.residual_dilations]
        layers += [nn.ELU(), CausalConv1d(c, 1, 7)]
        self.net = nn.Sequential(*layers)

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        return self.net(latents)


# ------------------------------------------------------------------------------------------
# The frame-rate codec: windows of two hops (50% overlap), each frame's spectrum in, each
# frame's spectrum out. A fixed DFT basis as matrices (not torch.stft) keeps the graphs
# plain MatMuls for ONNX.
def _dft_basis(n_fft: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(cos, sin) of shape (bins, n_fft), each row a frequency, windowed by a periodic Hann
    (whose copies at half a window apart sum to one)."""
    n = torch.arange(n_fft, dtype=torch.float64)
    k = torch.arange(n_fft // 2 + 1, dtype=torch.float64)[:, None]
    window = 0.5 - 0.5 * torch.cos(2 * math.pi * n / n_fft)
    angle = 2 * math.pi * k * n / n_fft
    return (torch.cos(angle) * window).float(), (torch.sin(angle) * window).float()


class FrameBlock(nn.Module):
    """A causal ConvNeXt block at the frame rate: a depthwise convolution over the last 7
    frames, a per-frame LayerNorm and MLP, and the residual."""

    def __init__(self, channels: int):
        super().__init__()
        self.mix = CausalConv1d(channels, channels, 7, groups=channels)
        self.norm = nn.LayerNorm(channels)
        self.mlp = nn.Sequential(nn.Linear(channels, 4 * channels), nn.GELU(),
                                 nn.Linear(4 * channels, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.mix(x).transpose(1, 2)
        return x + self.mlp(self.norm(y)).transpose(1, 2)


class STFTEncoder(FramedEncoder):
    """(B, 1, samples) -> (B, latent_dim, samples / hop): the log-magnitude spectrum of the
    two hops ending at each frame's end, then frame blocks."""

    def __init__(self, config: CodecConfig):
        super().__init__()
        self.hop, c = config.hop, config.frame_channels
        cos, sin = _dft_basis(2 * self.hop)
        self.register_buffer("analysis", torch.cat([cos, sin])[:, None, :], persistent=False)
        bins = self.hop + 1
        self.inp = nn.Conv1d(bins, c, 1)
        self.blocks = nn.Sequential(*[FrameBlock(c) for _ in range(config.frame_blocks)])
        self.out = nn.Conv1d(c, config.latent_dim, 1)

    def log_magnitude(self, audio: torch.Tensor) -> torch.Tensor:
        """(B, 1, samples), a multiple of the hop -> (B, bins, frames): the spectrum of the
        window of each frame."""
        audio = F.pad(audio, (self.hop, 0))  # a window a frame, the first half silence
        re, im = F.conv1d(audio, self.analysis, stride=self.hop).chunk(2, dim=1)
        return torch.log(torch.sqrt(re * re + im * im + 1e-10) + 1e-4)

    def whole_frames(self, audio: torch.Tensor) -> torch.Tensor:
        return self.out(self.blocks(self.inp(self.log_magnitude(audio))))


class STFTDecoder(nn.Module):
    """(B, latent_dim, frames) -> (B, 1, frames * hop): frame blocks predict each frame's
    log-magnitude and phase; its window, inverse-transformed, starts at the frame's first
    sample, so a frame's samples are its own window's first half and the previous one's
    second half: causal, one frame back."""

    def __init__(self, config: CodecConfig):
        super().__init__()
        self.hop, c = config.hop, config.frame_channels
        bins = self.hop + 1
        # The inverse real DFT (each bin but DC and Nyquist stands for two), windowed.
        cos, sin = _dft_basis(2 * self.hop)
        weight = torch.full((bins, 1), 1.0 / self.hop)
        weight[0] = weight[-1] = 0.5 / self.hop
        self.register_buffer("synthesis_cos", cos * weight, persistent=False)
        self.register_buffer("synthesis_sin", -sin * weight, persistent=False)
        self.inp = CausalConv1d(config.latent_dim, c, 7)
        self.blocks = nn.Sequential(*[FrameBlock(c) for _ in range(config.frame_blocks)])
        self.out = nn.Conv1d(c, 2 * bins, 1)

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        log_magnitude, phase = self.out(self.blocks(self.inp(latents))).transpose(1, 2).chunk(2, -1)
        return self.synthesise(log_magnitude.clamp(max=8.0), phase)  # e^8: above any real bin

    def synthesise(self, log_magnitude: torch.Tensor, phase: torch.Tensor) -> torch.Tensor:
        """(B, frames, bins) log-magnitudes and phases -> (B, 1, frames * hop) samples."""
        magnitude = torch.exp(log_magnitude)
        windows = (magnitude * torch.cos(phase)) @ self.synthesis_cos + (
            magnitude * torch.sin(phase)) @ self.synthesis_sin  # (B, frames, 2 * hop)
        first, second = windows[..., : self.hop], windows[..., self.hop :]
        audio = first + F.pad(second, (0, 0, 1, 0))[:, :-1]  # the previous frame's tail
        return audio.reshape(audio.shape[0], 1, -1)


# ------------------------------------------------------------------------------------------
class ResidualVQ(nn.Module):
    """K codebooks, each quantising what the ones before it left over.

    forward: latents (B, D, T) -> (quantised latents with a straight-through gradient,
    codes (B, K, T), commitment loss). Codebooks update only in training mode."""

    def __init__(self, config: CodecConfig):
        super().__init__()
        self.codebooks = nn.ModuleList(
            EMACodebook(
                config.latent_dim,
                config.codebook_size,
                config.ema_decay,
                config.kmeans_iters,
                config.dead_code_threshold,
            )
            for _ in range(config.num_codebooks)
        )
        self.commitment_weight = config.commitment_weight

    def forward(self, latents: torch.Tensor, num_codebooks: int | None = None):
        b, d, t = latents.shape
        residual = latents.transpose(1, 2).reshape(b * t, d)
        quantised = torch.zeros_like(residual)
        codes, loss = [], latents.new_zeros(())
        for codebook in self.codebooks[:num_codebooks]:
            if self.training:
                if not bool(codebook.initialised):
                    codebook.update(residual.detach(), codebook.assign(residual.detach()))
                index = codebook.assign(residual.detach())
                codebook.update(residual.detach(), index)
            else:
                index = codebook.assign(residual)
            chosen = codebook.embed[index]
            loss = loss + F.mse_loss(residual, chosen.detach())
            quantised = quantised + chosen
            residual = residual - chosen
            codes.append(index)
        flat_latents = latents.transpose(1, 2).reshape(b * t, d)
        # Straight-through: the decoder's gradient reaches the encoder as if unquantised.
        out = flat_latents + (quantised - flat_latents).detach()
        out = out.reshape(b, t, d).transpose(1, 2)
        codes_out = torch.stack(codes, dim=1).reshape(b, t, -1).transpose(1, 2)
        return out, codes_out, loss * self.commitment_weight

    def encode(self, latents: torch.Tensor) -> torch.Tensor:
        b, d, t = latents.shape
        residual = latents.transpose(1, 2).reshape(b * t, d)
        codes = []
        for codebook in self.codebooks:
            index = codebook.assign(residual)
            residual = residual - codebook.embed[index]
            codes.append(index)
        return torch.stack(codes, dim=1).reshape(b, t, -1).transpose(1, 2)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """(B, K', T) codes of the first K' codebooks -> (B, D, T) latents."""
        total = sum(cb.embed[codes[:, k]] for k, cb in enumerate(self.codebooks[: codes.shape[1]]))
        return total.transpose(1, 2)


class Codec(nn.Module):
    def __init__(self, config: CodecConfig):
        super().__init__()
        self.config = config
        if config.architecture not in ARCHITECTURES:
            raise ValueError(f"architecture must be one of {', '.join(ARCHITECTURES)}, "
                             f"got {config.architecture!r}")
        encoder, decoder = ARCHITECTURES[config.architecture]
        self.encoder = encoder(config)
        self.quantiser = ResidualVQ(config)
        self.decoder = decoder(config)

    def forward(self, audio: torch.Tensor):
        """(B, 1, samples) -> (reconstruction (B, 1, samples), codes, commitment loss)."""
        quantised, codes, commitment = self.quantiser(self.encoder(audio))
        return self.decoder(quantised)[..., : audio.shape[-1]], codes, commitment

    def encode(self, audio: torch.Tensor) -> torch.Tensor:
        return self.quantiser.encode(self.encoder(audio))

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.quantiser.decode(codes))

    @torch.no_grad()
    def decode_chunked(self, codes: torch.Tensor, chunk_frames: int) -> torch.Tensor:
        """`decode` a chunk of frames at a time, each with `decoder_context_frames` frames
        before it: what a stateless decoder graph does while streaming. The decoder is
        causal with a finite reach back, so the result equals decoding the whole at once."""
        context = decoder_context_frames(self.config)
        hop, frames = self.config.hop, codes.shape[-1]
        pieces = []
        for start in range(0, frames, chunk_frames):
            begin = max(start - context, 0)
            audio = self.decode(codes[..., begin : start + chunk_frames])
            pieces.append(audio[..., (start - begin) * hop :])
        return torch.cat(pieces, dim=-1)


ARCHITECTURES = {"seanet": (Encoder, Decoder), "stft": (STFTEncoder, STFTDecoder)}


def decoder_context_frames(config: CodecConfig) -> int:
    """How many frames before a chunk the decoder's output in that chunk depends on: the
    left reach of every causal layer, in frames (a layer running after an upsampling by u
    reaches back 1/u of a frame per sample)."""
    if config.architecture == "stft":  # the input conv and each block see 6 frames back;
        return 6 + 6 * config.frame_blocks + 1  # and a frame's samples the previous window
    reach = 6.0  # the first convolution, kernel 7, at the frame rate
    rate = 1  # samples per frame where the layer runs
    for stride in reversed(config.strides):
        reach += 1 / rate  # a transposed conv (kernel 2 * stride) mixes two input samples
        rate *= stride
        reach += sum(2 * d for d in config.residual_dilations) / rate  # kernel 3, dilation d
    reach += 6 / rate  # the last convolution, kernel 7
    return math.ceil(reach)
