"""Text prompts -> embeddings for the codec-lm plugin: the `tokenizers` package and an ONNX graph.

No torch: the graph is all-MiniLM-L6-v2 exported by cadenza/export/text_encoder.py, and
`tokenizer.json` is the model's own WordPiece tokenizer (lower-casing, BERT's splitting,
[CLS] ... [SEP]), read by Hugging Face's `tokenizers` (a Rust wheel, `cadenza[audio]`).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnxruntime as ort

from cadenza.errors import CadenzaError

# sentence-transformers encodes this model's inputs up to 256 tokens (sentence_bert_config);
# the tokenizer.json it ships truncates at 128 and pads to 128, which we replace.
MAX_TOKENS = 256


def load_tokenizer(path: str | Path, max_tokens: int = MAX_TOKENS):
    """The WordPiece tokenizer of `tokenizer.json`, padding each batch to its longest text."""
    try:
        from tokenizers import Tokenizer
    except ImportError:
        raise CadenzaError(
            "text prompts need the tokenizers package: pip install 'cadenza[audio]'"
        ) from None
    path = Path(path)
    try:
        tokenizer = Tokenizer.from_file(str(path))
    except Exception as e:  # tokenizers raises plain Exceptions for a missing or bad file
        raise CadenzaError(f"{path}: cannot read the tokenizer ({e})") from None
    tokenizer.enable_truncation(max_length=max_tokens)
    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
    return tokenizer


class TextEncoder:
    """`embed(texts)` -> (n, 384) float32, unit length; `encode(texts)` adds the per-token
    states and their mask, for cross-attention."""

    def __init__(self, graph: str | Path, tokenizer: str | Path, *, threads: int = 1):
        self.tokenizer = load_tokenizer(tokenizer)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(
                str(graph), options, providers=["CPUExecutionProvider"]
            )
        except Exception as e:  # onnxruntime's own exception types for a missing/bad graph
            raise CadenzaError(f"{graph}: cannot load the text encoder graph ({e})") from None

    def tokenize(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(input_ids, attention_mask), int64, shape (n, longest)."""
        batch = self.tokenizer.encode_batch(list(texts))
        ids = np.array([e.ids for e in batch], dtype=np.int64)
        mask = np.array([e.attention_mask for e in batch], dtype=np.int64)
        return ids, mask

    def encode(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(token_states (n, tokens, 384), attention_mask (n, tokens), embedding (n, 384))."""
        ids, mask = self.tokenize(texts)
        states, embedding = self.session.run(None, {"input_ids": ids, "attention_mask": mask})
        return states, mask, embedding

    def embed(self, texts: list[str]) -> np.ndarray:
        return self.encode(texts)[2]


GRAPH = "text_encoder.onnx"
TOKENIZER = "tokenizer.json"


def cache_dir() -> Path:
    """Where the exported text encoder is kept for every bundle that needs it: 45 MB, too
    big to ship in each bundle ($CADENZA_CACHE, else ~/.cache/cadenza)."""
    root = os.environ.get("CADENZA_CACHE") or Path.home() / ".cache" / "cadenza"
    return Path(root) / "text-encoder"


def find_text_encoder(*folders: Path) -> TextEncoder:
    """The text encoder in the first of `folders` (a bundle's own), else the cache; a
    one-line CadenzaError saying how to prepare it when there is none."""
    for folder in (*folders, cache_dir()):
        if (folder / GRAPH).is_file() and (folder / TOKENIZER).is_file():
            return TextEncoder(folder / GRAPH, folder / TOKENIZER)
    raise CadenzaError(
        f"no text encoder in {cache_dir()}: run `cadenza audio --prepare` once "
        "(it needs pip install 'cadenza[train]' for the export)"
    )
