"""The codec as two ONNX graphs for the codec-lm runtime, parity-checked against PyTorch.

- encoder: audio (batch, 1, samples), samples a multiple of the hop -> codes (batch, K, frames)
- decoder: codes (batch, K', frames), K' <= K -> audio (batch, 1, frames * hop)

Both take any number of frames. The decoder is causal, so the runtime streams by decoding
each chunk with `decoder_context_frames` frames before it (see Codec.decode_chunked).
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import torch
from torch import nn

from cadenza.errors import CadenzaError
from cadenza.export.onnx_io import onnx_graph
from cadenza.training.codec import Codec

PARITY_SECONDS = 2.0
PARITY_TOLERANCE = 1e-4  # on decoded samples in [-1, 1]
PARITY_CODE_AGREEMENT = 0.99  # a near-tie can round the other way, and a flip in codebook k
# changes what codebooks > k quantise in that frame: a few codes in a few hundred


class EncoderGraph(nn.Module):
    def __init__(self, codec: Codec):
        super().__init__()
        self.codec = codec

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        # The encoder's own end padding is the host's job here: shape arithmetic traced
        # into the graph would freeze it to the example's length.
        return self.codec.quantiser.encode(self.codec.encoder.whole_frames(audio))


class DecoderGraph(nn.Module):
    def __init__(self, codec: Codec):
        super().__init__()
        self.codec = codec

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        return self.codec.decode(codes)


def codec_graphs(codec: Codec) -> tuple[bytes, bytes]:
    """(encoder graph, decoder graph) as ONNX bytes."""
    codec = codec.eval()
    hop, k = codec.config.hop, codec.config.num_codebooks
    encoder = onnx_graph(
        EncoderGraph(codec),
        (torch.zeros(1, 1, 4 * hop),),
        ["audio"],
        ["codes"],
        {"audio": {0: "batch", 2: "samples"}, "codes": {0: "batch", 2: "frames"}},
        fold_constants=False,  # each codebook once, not also transposed and its norms
    )
    decoder = onnx_graph(
        DecoderGraph(codec),
        (torch.zeros(1, k, 4, dtype=torch.int64),),
        ["codes"],
        ["audio"],
        {"codes": {0: "batch", 1: "codebooks", 2: "frames"}, "audio": {0: "batch", 2: "samples"}},
        fold_constants=False,
    )
    return encoder, decoder


@torch.no_grad()
def parity_check(codec: Codec, encoder: bytes, decoder: bytes, audio: torch.Tensor) -> dict:
    """Encode `audio` (1, 1, samples) and decode its codes in both runtimes; raises a
    CadenzaError when they disagree, else returns the figures for the manifest."""
    codec = codec.eval()
    hop = codec.config.hop
    audio = audio[..., : audio.shape[-1] // hop * hop]
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    enc = ort.InferenceSession(encoder, options, providers=["CPUExecutionProvider"])
    dec = ort.InferenceSession(decoder, options, providers=["CPUExecutionProvider"])

    codes_t = codec.encode(audio)
    codes_o = enc.run(None, {"audio": audio.numpy()})[0]
    agreement = float(np.mean(codes_o == codes_t.numpy()))
    audio_t = codec.decode(codes_t).numpy()
    audio_o = dec.run(None, {"codes": codes_t.numpy()})[0]
    worst = float(np.abs(audio_o - audio_t).max())
    if agreement < PARITY_CODE_AGREEMENT or worst > PARITY_TOLERANCE:
        raise CadenzaError(
            f"codec export: parity check failed ({agreement:.4f} of codes agree, decoded "
            f"samples differ by up to {worst:.2e})"
        )
    return {"code_agreement": agreement, "max_abs_sample_diff": worst}
