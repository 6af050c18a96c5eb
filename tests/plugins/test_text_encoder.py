"""The runtime text encoder: all-MiniLM-L6-v2 as shipped, in numpy, with no torch."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cadenza.errors import BundleError, CadenzaError
from cadenza.plugins.text_encoder import (
    EMBEDDING_DIM,
    TOKENIZER,
    WEIGHTS,
    TextEncoder,
    find_text_encoder,
    shipped_dir,
)

pytest.importorskip("tokenizers")
pytest.importorskip("safetensors")

CAPTIONS = [
    "a marimba playing a fast folk tune in a high register",
    "A Choir singing Bach's chorale, slowly... (low!)",
    "a harpsichord playing a moderately paced chopin piece in a middle register",
]
# Python that cannot import torch (nor what needs it), then runs what follows.
NO_TORCH = (
    "import sys\n"
    "for name in ('torch', 'transformers', 'sentence_transformers'):\n"
    "    sys.modules[name] = None\n"
)


def test_embeddings_are_unit_vectors_with_token_states(text_encoder):
    states, mask, embedding = text_encoder.encode(CAPTIONS)
    assert embedding.shape == (3, EMBEDDING_DIM) and embedding.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(embedding, axis=1), 1.0, atol=1e-5)
    assert states.shape == (*mask.shape, EMBEDDING_DIM) and states.dtype == np.float32


def test_padding_does_not_change_an_embedding(text_encoder):
    alone = text_encoder.embed(["flute"])
    beside_a_long_one = text_encoder.embed(["flute", CAPTIONS[2]])
    assert text_encoder.tokenize(["flute", CAPTIONS[2]])[0].shape[1] > 3
    np.testing.assert_allclose(beside_a_long_one[0], alone[0], atol=1e-5)


def test_like_prompts_land_near_each_other(text_encoder):
    organ, chorale, guitar = text_encoder.embed([
        "a church organ", "an organ playing a slow Bach chorale",
        "an acoustic guitar playing a fast folk tune"])
    assert organ @ chorale > organ @ guitar + 0.1


def test_the_encoder_is_loaded_once_per_process():
    assert find_text_encoder() is find_text_encoder()


def test_a_bundle_may_carry_its_own(tmp_path):
    for name in (WEIGHTS, TOKENIZER):
        shutil.copyfile(shipped_dir() / name, tmp_path / name)
    assert find_text_encoder(tmp_path) is not find_text_encoder()


@pytest.mark.parametrize("name", [WEIGHTS, TOKENIZER])
def test_a_bundle_linking_out_of_itself_is_refused_in_one_line(tmp_path, name):
    for own in (WEIGHTS, TOKENIZER):
        if own != name:
            shutil.copyfile(shipped_dir() / own, tmp_path / own)
    (tmp_path / name).symlink_to(shipped_dir() / name)  # a real file, outside the bundle
    with pytest.raises(BundleError) as e:
        find_text_encoder(tmp_path)
    message = str(e.value)
    assert "\n" not in message and name in message and "link out of the bundle" in message


def test_missing_or_bad_files_are_one_clear_error(tmp_path):
    with pytest.raises(CadenzaError, match="cannot read the text encoder weights"):
        TextEncoder(tmp_path / "nothing.safetensors", shipped_dir() / TOKENIZER)
    (tmp_path / "bad.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(CadenzaError, match="cannot read the text encoder weights"):
        TextEncoder(tmp_path / "bad.safetensors", shipped_dir() / TOKENIZER)
    with pytest.raises(CadenzaError, match="cannot read the tokenizer"):
        TextEncoder(shipped_dir() / WEIGHTS, tmp_path / "nothing.json")


def test_weights_of_another_model_are_refused(tmp_path):
    from safetensors.numpy import save_file

    save_file({"w": np.zeros((2, 2), np.float32)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(CadenzaError, match="not all-MiniLM-L6-v2's weights"):
        TextEncoder(tmp_path / "other.safetensors", shipped_dir() / TOKENIZER)


@pytest.mark.parametrize("package", ["tokenizers", "safetensors"])
def test_a_missing_extra_names_what_to_install(package, monkeypatch):
    monkeypatch.setitem(sys.modules, package, None)
    monkeypatch.setitem(sys.modules, f"{package}.numpy", None)
    with pytest.raises(CadenzaError, match=r"pip install 'cadenza\[audio\]'"):
        TextEncoder(shipped_dir() / WEIGHTS, shipped_dir() / TOKENIZER)


def test_the_runtime_encoder_runs_without_torch():
    code = NO_TORCH + (
        "from cadenza.plugins.text_encoder import find_text_encoder\n"
        "e = find_text_encoder().embed(['a flute'])\n"
        "assert e.shape == (1, 384)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_cadenza_audio_with_a_prompt_runs_without_torch(tiny_codec_lm_bundle: Path, tmp_path):
    out = tmp_path / "organ.wav"
    argv = ["audio", "--bundle", str(tiny_codec_lm_bundle), "--prompt", "a church organ",
            "--seconds", "1", "--seed", "2", "-o", str(out)]
    code = NO_TORCH + f"from cadenza.cli import main\nsys.exit(main({argv!r}))\n"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    from cadenza.sound_files import read_sound

    samples, rate = read_sound(out)
    assert rate == 24000 and len(samples) == 24000


def test_prepare_is_a_harmless_no_op(capsys):
    from cadenza.cli import main

    assert main(["audio", "--prepare"]) == 0
    assert "nothing to prepare" in capsys.readouterr().out
