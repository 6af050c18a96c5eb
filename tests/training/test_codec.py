"""The codec's model file: the EMA residual quantiser on tiny data, and the causal shapes."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from cadenza.training.codebook import EMACodebook, kmeans
from cadenza.training.codec import (
    Codec,
    CodecConfig,
    ResidualVQ,
    STFTDecoder,
    STFTEncoder,
    decoder_context_frames,
)
from tests.helpers import tiny_codec

CENTRES = torch.tensor([[4.0, 0.0], [-4.0, 0.0], [0.0, 4.0], [0.0, -4.0]])


def clusters(n: int, seed: int = 0) -> torch.Tensor:
    """n points around the four CENTRES, spread 0.1."""
    g = torch.Generator().manual_seed(seed)
    which = torch.randint(4, (n,), generator=g)
    return CENTRES[which] + 0.1 * torch.randn(n, 2, generator=g)


def tiny(**changes) -> CodecConfig:
    values = {
        "latent_dim": 2,
        "num_codebooks": 1,
        "codebook_size": 4,
        "kmeans_iters": 10,
        "dead_code_threshold": 0.0,
    }
    return CodecConfig(**{**values, **changes})


def as_latents(points: torch.Tensor) -> torch.Tensor:
    return points.t().unsqueeze(0)  # (1, D, T): one "clip" whose frames are the points


def test_kmeans_finds_separated_clusters():
    torch.manual_seed(0)
    found = kmeans(clusters(400), 4, iters=10)
    nearest = torch.cdist(CENTRES, found).min(dim=1).values
    assert (nearest < 0.3).all(), found


def test_first_training_batch_initialises_the_codebook_by_kmeans():
    torch.manual_seed(1)
    rvq = ResidualVQ(tiny()).train()
    _, _, loss = rvq(as_latents(clusters(400)))
    assert bool(rvq.codebooks[0].initialised)
    assert loss.item() < 0.05  # every point is 0.1 from a code


def test_ema_moves_codes_to_the_mean_of_their_vectors():
    torch.manual_seed(2)
    book = EMACodebook(2, 4, decay=0.5, kmeans_iters=5, dead_below=0.0)
    data = clusters(400)
    book.update(data, book.assign(data))  # k-means start
    shifted = data + torch.tensor([1.0, 1.0])
    for _ in range(30):
        book.update(shifted, book.assign(shifted))
    nearest = torch.cdist(CENTRES + 1.0, book.embed).min(dim=1).values
    assert (nearest < 0.1).all(), book.embed


def test_dead_codes_restart_on_batch_vectors():
    book = EMACodebook(2, 8, decay=0.9, kmeans_iters=0, dead_below=1.0)
    book.initialised.fill_(True)
    book.embed.copy_(torch.full((8, 2), 100.0))  # far from all data: never chosen
    book.embed[0] = 0.0
    book.cluster_size.fill_(0.0)
    book.cluster_size[0] = 50.0
    data = clusters(64)
    assert book.restart_dead(data) == 7
    is_a_batch_vector = (book.embed[1:, None, :] == data[None]).all(dim=-1).any(dim=-1)
    assert is_a_batch_vector.all()


def test_more_codebooks_leave_a_smaller_residual():
    torch.manual_seed(3)
    data = torch.randn(2000, 8)
    errors = []
    for k in (1, 4):
        rvq = ResidualVQ(tiny(latent_dim=8, num_codebooks=k, codebook_size=16)).train()
        for _ in range(5):
            rvq(as_latents(data))
        rvq.eval()
        out, _, _ = rvq(as_latents(data))
        errors.append(torch.mean((out - as_latents(data)) ** 2).item())
    assert errors[1] < 0.6 * errors[0], errors


def test_eval_mode_leaves_the_codebooks_alone():
    torch.manual_seed(4)
    rvq = ResidualVQ(tiny()).train()
    rvq(as_latents(clusters(200)))
    before = rvq.codebooks[0].embed.clone()
    rvq.eval()
    rvq(as_latents(clusters(200, seed=9) + 3.0))
    assert torch.equal(rvq.codebooks[0].embed, before)


def test_encode_then_decode_is_the_quantised_forward():
    torch.manual_seed(5)
    rvq = ResidualVQ(tiny(latent_dim=8, num_codebooks=3, codebook_size=16)).train()
    latents = torch.randn(2, 8, 50)
    rvq(latents)
    rvq.eval()
    quantised, codes, _ = rvq(latents)
    assert torch.equal(rvq.encode(latents), codes)
    torch.testing.assert_close(rvq.decode(codes), quantised)


@pytest.fixture(scope="module", params=["seanet", "stft"])
def small_codec(request) -> Codec:
    return tiny_codec(request.param, seed=6, samples=4800)


def test_codec_makes_50_frames_a_second_at_24_khz(small_codec):
    assert small_codec.config.frame_rate == 50.0
    codes = small_codec.encode(torch.randn(1, 1, 24000) * 0.1)
    assert codes.shape == (1, 4, 50)
    assert small_codec.decode(codes).shape == (1, 1, 24000)


@torch.no_grad()
def test_decoding_a_prefix_gives_the_prefix_of_the_audio(small_codec):
    # Causal throughout: what later frames hold never changes earlier samples, so the
    # decoder can run in chunks with no seams.
    codes = small_codec.encode(torch.randn(1, 1, 9600) * 0.1)
    whole = small_codec.decode(codes)
    first = small_codec.decode(codes[..., :7])
    torch.testing.assert_close(first, whole[..., : 7 * 480])


@torch.no_grad()
@pytest.mark.parametrize("chunk", [3, 16])
def test_chunked_decoding_with_context_equals_decoding_at_once(small_codec, chunk):
    codes = small_codec.encode(torch.randn(1, 1, 24000) * 0.1)
    whole = small_codec.decode(codes)
    torch.testing.assert_close(small_codec.decode_chunked(codes, chunk), whole)


@torch.no_grad()
def test_less_context_than_the_reach_changes_the_audio(small_codec):
    # The reach is no overestimate to be trimmed freely: a frame less changes samples.
    codes = small_codec.encode(torch.randn(1, 1, 24000) * 0.1)
    whole = small_codec.decode(codes)
    short = decoder_context_frames(small_codec.config) - 1
    start = 30
    cut = small_codec.decode(codes[..., start - short : start + 4])
    assert not torch.allclose(cut[..., -4 * 480 :], whole[..., start * 480 : (start + 4) * 480])


def test_an_unknown_architecture_is_refused():
    with pytest.raises(ValueError, match="architecture must be one of seanet, stft"):
        Codec(CodecConfig(architecture="wavenet"))


@torch.no_grad()
def test_the_stft_codecs_transforms_are_an_exact_pair():
    # What the frame-rate encoder sees is each window's magnitude spectrum, and what its
    # decoder writes, given a window's true spectrum, adds up to the signal again: the
    # periodic Hann windows half a window apart sum to one.
    config = CodecConfig(architecture="stft", frame_channels=8, frame_blocks=1)
    hop = config.hop
    signal = torch.randn(1, 1, 6 * hop)
    windows = F.pad(signal, (hop, 0))[0, 0].unfold(0, 2 * hop, hop)  # ending at each frame's end
    n = torch.arange(2 * hop)
    hann = 0.5 - 0.5 * torch.cos(2 * math.pi * n / (2 * hop))
    expected = torch.log(torch.fft.rfft(windows * hann).abs() + 1e-4)
    torch.testing.assert_close(STFTEncoder(config).log_magnitude(signal)[0].T, expected,
                               atol=1e-3, rtol=1e-4)

    starting = signal[0, 0].unfold(0, 2 * hop, hop)  # the decoder's windows start at frames
    spectrum = torch.fft.rfft(starting)
    audio = STFTDecoder(config).synthesise(spectrum.abs().log()[None], spectrum.angle()[None])
    # Frame 0 lacks the window before it; from frame 1 on, every sample is the signal's.
    torch.testing.assert_close(audio[0, 0, hop : 5 * hop], signal[0, 0, hop : 5 * hop],
                               atol=1e-4, rtol=1e-4)
