"""Export a Music Transformer checkpoint: a prefill graph and a cached step graph, one bundle.

The bundle is written only after a parity check: from a primer, a greedy rollout of 500 tokens
is the same in PyTorch and onnxruntime, with logits within 1e-4 at every step, on a cache small
enough that the window slides during the rollout.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from cadenza.bundle import FORMAT, write_bundle
from cadenza.corpus.prepare import load_split
from cadenza.errors import CadenzaError
from cadenza.events import PERFORMANCE
from cadenza.export.onnx_io import (
    onnx_graph,
    round_weights_to_float16,
    store_weights_float16,
    training_record,
)
from cadenza.manifest import PerformanceRepresentation
from cadenza.parts import PartsCodec, default_programs, harmony_intervals, part_voices
from cadenza.plugins.manifests import (
    BackingManifest,
    BackingParts,
    PartsRepresentation,
    TransformerManifest,
    TransformerModel,
    TransformerSampling,
)
from cadenza.plugins.transformer import KVCache
from cadenza.training.loop import model_from_checkpoint
from cadenza.training.transformer import MusicTransformer, TransformerPrefill, TransformerStep

PARITY_STEPS = 500
PARITY_CONTEXT = 128  # slots in the parity run's cache: the window slides after 127 events
PARITY_TOLERANCE = 1e-4


def example_cache(layers: int, heads: int, head_dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A step graph's example cache to trace with: 16 slots, the first 4 filled (the
    cache's length stays a free axis of the graph)."""
    size = 16
    positions = torch.full((size,), -1, dtype=torch.int64)
    positions[:4] = torch.arange(4)
    return torch.zeros(layers, heads, size, head_dim), positions


def graphs(model: MusicTransformer) -> dict[str, bytes]:
    c = model.config
    layers, heads, head_dim = c.num_layers, c.num_heads, c.d_model // c.num_heads
    prefill = onnx_graph(
        TransformerPrefill(model), (torch.zeros(1, 8, dtype=torch.int64),), ["tokens"],
        ["logits", "keys", "values"],
        {"tokens": {1: "length"}, "keys": {2: "length"}, "values": {2: "length"}},
    )
    cache, positions = example_cache(layers, heads, head_dim)
    step = onnx_graph(
        TransformerStep(model),
        (torch.zeros(1, dtype=torch.int64), torch.tensor([4]), cache, cache.clone(), positions),
        ["token", "position", "cache_k", "cache_v", "cache_positions"],
        ["logits", "new_k", "new_v"],
        {"cache_k": {2: "context"}, "cache_v": {2: "context"}, "cache_positions": {0: "context"}},
    )
    return {"prefill": prefill, "step": step}


@torch.no_grad()
def parity_check(model: MusicTransformer, exported: dict[str, bytes],
                 steps: int = PARITY_STEPS, context: int = PARITY_CONTEXT) -> float:
    """Greedy rollouts from the same primer in both runtimes; the largest logit difference."""
    sessions = {k: ort.InferenceSession(g, providers=["CPUExecutionProvider"])
                for k, g in exported.items()}
    prefill, step = TransformerPrefill(model).eval(), TransformerStep(model).eval()
    c = model.config
    primer = np.array([[model.style_token(None), 355, 60, 300, 188, 64]], dtype=np.int64)
    caches = {name: KVCache(c.num_layers, c.num_heads, c.d_model // c.num_heads, context)
              for name in ("torch", "onnx")}
    logits_t, k, v = (t.numpy() for t in prefill(torch.from_numpy(primer)))
    caches["torch"].fill(k, v)
    logits_o, k, v = sessions["prefill"].run(None, {"tokens": primer})
    caches["onnx"].fill(k, v)
    worst = float(np.abs(logits_t - logits_o).max())
    for i in range(steps):
        token_t, token_o = int(logits_t.argmax()), int(logits_o.argmax())
        if token_t != token_o:
            raise CadenzaError(f"parity check failed: greedy tokens differ at step {i} "
                               f"({token_t} in PyTorch, {token_o} in onnxruntime)")
        if worst > PARITY_TOLERANCE:
            raise CadenzaError(f"parity check failed: logits differ by {worst:.2e} at step {i} "
                               f"(tolerance {PARITY_TOLERANCE:.0e})")
        cache = caches["torch"]
        position = np.array([cache.next_position])
        outputs = step(torch.tensor([token_t]), torch.from_numpy(position),
                       torch.from_numpy(cache.k), torch.from_numpy(cache.v),
                       torch.from_numpy(cache.positions))
        logits_t, k, v = (t.numpy() for t in outputs)
        cache.append(k, v)
        cache = caches["onnx"]
        logits_o, k, v = sessions["step"].run(None, {
            "token": np.array([token_o]), "position": position, "cache_k": cache.k,
            "cache_v": cache.v, "cache_positions": cache.positions})
        cache.append(k, v)
        worst = max(worst, float(np.abs(logits_t - logits_o).max()))
    return worst


def io_spec(model: MusicTransformer) -> dict:
    c = model.config
    layers, heads, head_dim = c.num_layers, c.num_heads, c.d_model // c.num_heads
    logits = {"shape": [1, c.vocab_size], "dtype": "float32"}
    cached = {"shape": [layers, heads, "context", head_dim], "dtype": "float32"}
    new = {"shape": [layers, heads, head_dim], "dtype": "float32"}
    return {
        "prefill": {
            "inputs": {"tokens": {"shape": [1, "length"], "dtype": "int64"}},
            "outputs": {"logits": logits,
                        "keys": {"shape": [layers, heads, "length", head_dim], "dtype": "float32"},
                        "values": {"shape": [layers, heads, "length", head_dim],
                                   "dtype": "float32"}},
        },
        "step": {
            "inputs": {"token": {"shape": [1], "dtype": "int64"},
                       "position": {"shape": [1], "dtype": "int64"},
                       "cache_k": cached, "cache_v": cached,
                       "cache_positions": {"shape": ["context"], "dtype": "int64"}},
            "outputs": {"logits": logits, "new_k": new, "new_v": new},
        },
    }


def export_transformer(checkpoint: dict, out_dir: str | Path, name: str | None = None) -> Path:
    model = model_from_checkpoint(checkpoint)
    # Weights stored as float16 (computed in float32): a bundle of a few MB, not 11. The
    # PyTorch side is rounded alike, so parity still holds to 1e-4; `cadenza eval` measures
    # the held-out NLL of the graphs as they ship.
    round_weights_to_float16(model)
    exported = {name: store_weights_float16(graph) for name, graph in graphs(model).items()}
    worst = parity_check(model, exported)
    config = checkpoint["config"]
    representation = checkpoint.get("representation") or PERFORMANCE.to_dict()
    # A transformer over parts on a grid plays backing parts: its own plugin.
    backing = representation.get("kind") == "parts"
    common = {
        "sampling": TransformerSampling(temperature=1.0, top_k=0, top_p=1.0),
        "model": TransformerModel.parse(config["model"], "model"),
        "context": config["seq_len"] + 1,  # the window it was trained on: style + events
    }
    section: TransformerManifest | BackingManifest
    if backing:
        parts = PartsRepresentation.parse(representation, "representation")
        section = BackingManifest(representation=parts, **common,
                                  backing=backing_parts(parts.codec(), config["data"]))
    else:
        section = TransformerManifest(
            representation=PerformanceRepresentation.parse(representation, "representation"),
            **common)
    manifest = {
        "format": FORMAT,
        "plugin": "backing" if backing else "transformer",
        "name": name or Path(config["out"]).name,
        **section.checked().to_dict(),
        "graphs": {"prefill": "prefill.onnx", "step": "step.onnx"},
        "io": io_spec(model),
        "conditions": {"styles": list(model.config.styles[1:])},
        "training": training_record(checkpoint, model),
        "parity": {"steps": PARITY_STEPS, "context": PARITY_CONTEXT,
                   "max_abs_logit_diff": float(f"{worst:.3g}")},
    }
    return write_bundle(out_dir, manifest, exported)


def backing_parts(codec: PartsCodec, corpus: str) -> BackingParts:
    """The backing's per-part settings, from its training corpus: registers, programs (each
    name's default), voices and the harmony knob's interval table."""
    statistics = backing_statistics(codec, corpus)
    return BackingParts(ranges=tuple(tuple(r) for r in backing_ranges(codec.to_dict(), corpus)),
                        programs=tuple(default_programs(codec.names)),
                        harmony=tuple(statistics["harmony"]), voices=tuple(statistics["voices"]))


HARMONY_SEQUENCES = 2000  # training sequences the backing's statistics are counted on


def backing_statistics(codec: PartsCodec, corpus: str) -> dict[str, list]:
    """From an even sample of the training split's sequences: the interval table of the
    player's notes against the backing's on the beats (`harmony`) and the notes each part
    sounds at once (`voices`), see cadenza.parts."""
    tokens, offsets = load_split(Path(corpus), "train")
    every = max(1, (len(offsets) - 1) // HARMONY_SEQUENCES)
    sample = [np.asarray(tokens[offsets[i]:offsets[i + 1]])
              for i in range(0, len(offsets) - 1, every)]
    return {"harmony": harmony_intervals(codec, sample), "voices": part_voices(codec, sample)}


def backing_ranges(representation: dict, corpus: str) -> list[list[int]]:
    """Each backing part's register in the training split of its corpus: the plugin plays
    no note outside it (a model's pitch logits far from what it was trained on are noise)."""
    tokens, _ = load_split(Path(corpus), "train")  # a missing corpus: one line that says so
    return [list(r) for r in PartsCodec.from_dict(representation).pitch_ranges(tokens)]
