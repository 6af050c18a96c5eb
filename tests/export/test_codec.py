"""The codec's encoder and decoder graphs in onnxruntime against the PyTorch codec."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch

from cadenza.export.codec import codec_graphs, parity_check
from cadenza.training.codec import Codec, decoder_context_frames
from tests.helpers import tiny_codec

HOP = 480


@pytest.fixture(scope="module", params=["seanet", "stft"])
def codec(request) -> Codec:
    return tiny_codec(request.param, seed=0, samples=9600)


@pytest.fixture(scope="module")
def graphs(codec) -> tuple[bytes, bytes]:
    return codec_graphs(codec)


def session(graph: bytes) -> ort.InferenceSession:
    return ort.InferenceSession(graph, providers=["CPUExecutionProvider"])


def test_parity_with_pytorch(codec, graphs):
    figures = parity_check(codec, *graphs, torch.randn(1, 1, 24000) * 0.1)
    assert figures["code_agreement"] >= 0.999
    assert figures["max_abs_sample_diff"] <= 1e-4


@pytest.mark.parametrize("frames", [1, 13, 60])
def test_graphs_take_any_length(graphs, frames):
    audio = np.random.default_rng(frames).normal(0, 0.1, (2, 1, frames * HOP)).astype(np.float32)
    codes = session(graphs[0]).run(None, {"audio": audio})[0]
    assert codes.shape == (2, 4, frames) and codes.dtype == np.int64
    decoded = session(graphs[1]).run(None, {"codes": codes})[0]
    assert decoded.shape == (2, 1, frames * HOP)


@torch.no_grad()
def test_decoder_graph_streams_in_chunks_with_context(codec, graphs):
    codes = codec.encode(torch.randn(1, 1, 24000) * 0.1).numpy()
    decoder = session(graphs[1])
    whole = decoder.run(None, {"codes": codes})[0]
    context, chunk, pieces = decoder_context_frames(codec.config), 7, []
    for start in range(0, codes.shape[-1], chunk):
        begin = max(start - context, 0)
        out = decoder.run(None, {"codes": codes[..., begin : start + chunk]})[0]
        pieces.append(out[..., (start - begin) * HOP :])
    np.testing.assert_allclose(np.concatenate(pieces, axis=-1), whole, atol=1e-5)
