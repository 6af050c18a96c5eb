"""The text encoder: all-MiniLM-L6-v2 from its wheel, exported to ONNX and run without torch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cadenza.errors import CadenzaError
from cadenza.export.text_encoder import (
    EMBEDDING_DIM,
    GRAPH,
    TOKENIZER,
    export_text_encoder,
    model_dir,
    parity_cosine,
)
from cadenza.plugins.text_encoder import TextEncoder

CAPTIONS = [
    "a marimba playing a fast folk tune in a high register",
    "A Choir singing Bach's chorale, slowly... (low!)",
    "a harpsichord playing a moderately paced chopin piece in a middle register",
]


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("text-encoder")
    return out, export_text_encoder(out)


@pytest.fixture(scope="module")
def encoder(exported) -> TextEncoder:
    return TextEncoder(exported[0] / GRAPH, exported[0] / TOKENIZER)


def test_export_records_its_parity_and_size(exported):
    out, info = exported
    assert info["parity"]["min_cosine"] >= 0.999
    assert info["bytes"] == (out / GRAPH).stat().st_size
    assert info["embedding_dim"] == EMBEDDING_DIM


def test_runtime_matches_sentence_transformers_on_unseen_captions(exported):
    assert parity_cosine(exported[0], CAPTIONS) > 0.999


def test_tokenizer_matches_berts_wordpiece_over_vocab(encoder):
    from transformers import BertTokenizer  # the pure-Python one: an independent implementation

    reference = BertTokenizer(str(model_dir() / "vocab.txt"), do_lower_case=True)
    ids, mask = encoder.tokenize(CAPTIONS)
    for row, text in enumerate(CAPTIONS):
        expected = reference(text)["input_ids"]
        assert ids[row, : mask[row].sum()].tolist() == expected


def test_padding_does_not_change_an_embedding(encoder):
    alone = encoder.embed(["flute"])
    beside_a_long_one = encoder.embed(["flute", CAPTIONS[2]])
    assert mask_len(encoder, ["flute", CAPTIONS[2]]) > mask_len(encoder, ["flute"])
    np.testing.assert_allclose(beside_a_long_one[0], alone[0], atol=1e-5)


def mask_len(encoder: TextEncoder, texts: list[str]) -> int:
    return encoder.tokenize(texts)[0].shape[1]


def test_embeddings_are_unit_vectors_with_token_states(encoder):
    states, mask, embedding = encoder.encode(CAPTIONS)
    assert embedding.shape == (3, EMBEDDING_DIM) and embedding.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(embedding, axis=1), 1.0, atol=1e-5)
    assert states.shape == (*mask.shape, EMBEDDING_DIM)


def test_a_missing_graph_is_one_clear_error(exported, tmp_path):
    with pytest.raises(CadenzaError, match="cannot load the text encoder graph"):
        TextEncoder(tmp_path / "nothing.onnx", exported[0] / TOKENIZER)


def test_the_runtime_path_never_imports_torch(exported):
    out = exported[0]
    code = (
        "import sys\n"
        "from cadenza.plugins.text_encoder import TextEncoder\n"
        f"e = TextEncoder({str(out / GRAPH)!r}, {str(out / TOKENIZER)!r}).embed(['a flute'])\n"
        "assert e.shape == (1, 384)\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
