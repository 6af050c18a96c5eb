"""A run that starts from another model's weights (`init_from:` in a training config): a shipped
transformer bundle or an earlier run's checkpoint, fine-tuned on other music. The optimizer
and the learning-rate schedule start afresh; `--resume` still means going on from `last.pt`.

The new corpus may name other styles: the conditioning rows are matched by name ("any" and
"bach" keep what they learnt), and a style the source never saw starts from its "any" row.

A bundle keeps no torch checkpoint, only ONNX graphs: the weights are read back from the
prefill graph (its large weights as float16, its linear layers transposed and unnamed, in the
order the model defines them), and the model so rebuilt must give the graph's own logits
before it is used: a graph that does not read back fails here, not after an hour of training.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from onnx import load_from_string, numpy_helper

from cadenza.bundle import load_bundle
from cadenza.errors import CadenzaError
from cadenza.training.config import TransformerConfig
from cadenza.training.runner import load_checkpoint
from cadenza.training.transformer import MusicTransformer, TransformerPrefill

PARITY_TOKENS = 64  # a primer long enough to use every layer's relative distances
PARITY_TOLERANCE = 1e-3  # logits; float16 weights are computed in float32 on both sides


def load_initial_weights(model: torch.nn.Module, source: str | Path) -> None:
    """Fill `model` (already built for this run's corpus) with the weights of `source`: a
    transformer bundle (a folder or .zip) or a run's checkpoint (.pt) of the same shape."""
    source = Path(source)
    if source.suffix == ".pt":
        checkpoint = load_checkpoint(source)
        state = checkpoint["model"]
        styles = checkpoint["config"]["model"].get("styles", ["any"])
    else:
        state, styles = bundle_weights(source)
    model.load_state_dict(adapted(state, styles, model, source))


def bundle_weights(path: Path) -> tuple[dict[str, torch.Tensor], list[str]]:
    """The state dict and style names of a transformer bundle, read back from its prefill
    graph and checked against it."""
    bundle = load_bundle(path)
    if bundle.manifest.get("plugin") != "transformer" or "prefill" not in bundle.manifest.get(
            "graphs", {}):
        raise CadenzaError(f"{path}: init_from reads transformer bundles (or a run's .pt "
                           f"checkpoint); this one is a {bundle.manifest.get('plugin')!r} bundle")
    fields = TransformerConfig.__dataclass_fields__
    config = TransformerConfig(**{k: v for k, v in bundle.manifest["model"].items()
                                  if k in fields})
    model = MusicTransformer(config).eval()
    graph = bundle.graph_bytes("prefill")
    weights = graph_weights(graph)
    named = {name.removeprefix("model.").removesuffix(".float16"): value
             for name, value in weights.items() if name.startswith("model.")}
    unnamed = [value for name, value in weights.items() if not name.startswith("model.")]
    state = {}
    for name, tensor in model.state_dict().items():
        if name in named:
            state[name] = torch.from_numpy(named[name]).reshape(tensor.shape)
        elif tensor.dim() == 2 and unnamed and unnamed[0].shape == tensor.shape[::-1]:
            state[name] = torch.from_numpy(unnamed.pop(0).T.copy())  # a linear layer's weight
        else:
            raise CadenzaError(f"{path}: the prefill graph holds no weight for {name} "
                               f"{tuple(tensor.shape)}; is it a Cadenza transformer bundle?")
    model.load_state_dict(state)
    check_parity(model, graph, path)
    return state, list(config.styles)


def graph_weights(graph: bytes) -> dict[str, np.ndarray]:
    """Every initializer of an ONNX graph as float32, in the graph's order."""
    return {tensor.name: numpy_helper.to_array(tensor).astype(np.float32)
            for tensor in load_from_string(graph).graph.initializer}


def check_parity(model: MusicTransformer, graph: bytes, path: Path) -> None:
    """The rebuilt model's logits against the graph's own, on a primer of ordinary events."""
    tokens = np.random.default_rng(0).integers(0, model.config.vocab_size, PARITY_TOKENS)
    tokens = np.concatenate([[model.style_token(None)], tokens]).reshape(1, -1).astype(np.int64)
    session = ort.InferenceSession(graph, providers=["CPUExecutionProvider"])
    expected = session.run(["logits"], {"tokens": tokens})[0]
    with torch.no_grad():
        got = TransformerPrefill(model)(torch.from_numpy(tokens))[0].numpy()
    difference = float(np.abs(got - expected).max())
    if difference > PARITY_TOLERANCE:
        raise CadenzaError(f"{path}: its weights do not read back from the prefill graph (logits "
                           f"differ by {difference:.2g}); retrain from scratch instead")


def adapted(state: dict[str, torch.Tensor], styles: list[str], model: torch.nn.Module,
            source: Path) -> dict[str, torch.Tensor]:
    """`state` fitted to `model`: every tensor of the same shape as is, the embedding's style
    rows matched by name (a style new to the source starts from its "any" row)."""
    target = model.state_dict()
    out = {}
    for name, tensor in target.items():
        if name not in state:
            raise CadenzaError(f"{source}: it has no {name}: init_from needs the same model")
        value = state[name]
        if name == "embed.weight" and isinstance(model, MusicTransformer):
            value = style_rows(value, styles, model.config)
        if value.shape != tensor.shape:
            raise CadenzaError(f"{source}: {name} is {tuple(value.shape)} there and "
                               f"{tuple(tensor.shape)} here: init_from needs the same model "
                               f"settings (model.d_model, num_layers, ...)")
        out[name] = value.to(tensor.dtype)
    return out


def style_rows(embedding: torch.Tensor, styles: list[str],
               config: TransformerConfig) -> torch.Tensor:
    """The event rows as they are, then one row per style of `config`, by name."""
    events = config.vocab_size
    if embedding.shape[0] != events + len(styles):
        return embedding  # not the same vocabulary: the shape check names it
    rows = [embedding[events + (styles.index(s) if s in styles else 0)] for s in config.styles]
    return torch.cat([embedding[:events], torch.stack(rows)])
