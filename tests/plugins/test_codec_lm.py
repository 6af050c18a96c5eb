"""The codec-lm runtime on a tiny real bundle: lengths, continuation, guidance, streaming."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import yaml

from cadenza.bundle import load_bundle
from cadenza.corpus.audio import load_clips
from cadenza.errors import BundleError
from cadenza.plugins.codec_lm import CodecLM


@pytest.fixture
def lm(tiny_codec_lm_bundle, text_encoder) -> CodecLM:
    return CodecLM(load_bundle(tiny_codec_lm_bundle), seed=3, text_encoder=text_encoder)


def real_clip(corpus, seconds: float, rate: int) -> np.ndarray:
    audio, _, _ = load_clips(corpus, "train")
    return audio[0, : round(seconds * rate)].astype(np.float32) / 32767


def test_generates_the_asked_length_of_sound(lm):
    lm.prime([], {"prompt": "a flute playing a folk tune"})
    audio = lm.generate_audio(1.3)
    assert audio.shape == (round(1.3 * lm.sample_rate),)
    assert audio.dtype == np.float32
    assert np.abs(audio).max() > 0


def test_continuation_generates_after_the_prompt_audio(lm, tiny_audio_corpus):
    prompt = real_clip(tiny_audio_corpus, 1.0, lm.sample_rate)
    codes = lm.encode(prompt)
    assert codes.shape == (lm.num_codebooks, len(prompt) // lm.hop)
    lm.prime(codes, {"prompt": "a piano"})
    # Taken in: the steps the prompt fixes whole (the delay pattern's last K - 1 steps
    # also hold the first new frames' codes, which are sampled).
    assert lm.frames == codes.shape[1] - (lm.num_codebooks - 1)
    # ...and kept as they are: the decoder continues from the prompt's own codes.
    np.testing.assert_array_equal(np.stack(lm.codes, axis=1), codes[:, : lm.frames])
    audio = lm.generate_audio(0.5)
    assert len(audio) == round(0.5 * lm.sample_rate)
    new_frames = round(0.5 * lm.sample_rate / lm.hop)
    assert lm.frames >= codes.shape[1] + new_frames  # the new audio comes after the prompt


def test_delay_pattern_steps_hold_special_tokens_before_the_first_frames(lm):
    lm.prime([], {"prompt": None})
    first = [lm.step() for _ in range(lm.num_codebooks)]
    for s, tokens in enumerate(first):
        # Codebook k has no code until step k: the special token (the codebook size) there.
        assert all(tokens[k] == lm.codebook_size for k in range(s + 1, lm.num_codebooks))
        assert all(tokens[k] < lm.codebook_size for k in range(s + 1))
    assert lm.frames == 1  # after K steps of the delay pattern, frame 0 is complete


def test_same_seed_same_sound(tiny_codec_lm_bundle, text_encoder):
    runs = []
    for _ in range(2):
        lm = CodecLM(load_bundle(tiny_codec_lm_bundle), seed=11, text_encoder=text_encoder)
        lm.prime([], {"prompt": "an organ"})
        runs.append(lm.generate_audio(0.4))
    np.testing.assert_array_equal(runs[0], runs[1])


def test_streamed_chunks_are_seamless(lm):
    """Chunk by chunk, each decoded with its context, equals decoding all frames at once."""
    lm.seed(5)
    lm.prime([], {"prompt": "strings"})
    chunks = [next(stream) for stream in [lm.stream(chunk_frames=3)] for _ in range(4)]
    lm.seed(5)  # the same draws again, stepped by hand: every frame's codes kept
    lm.prime([], {"prompt": "strings"})
    while lm.frames < 12:
        lm.step()
    whole = lm.decode_codes(np.stack(lm.codes[:12], axis=1))
    np.testing.assert_allclose(np.concatenate(chunks), whole, atol=1e-5)


def test_guidance_changes_the_next_step_only_with_a_prompt(lm):
    lm.prime([], {"prompt": "a church organ playing a slow Bach chorale"})
    assert not np.allclose(lm.logits["text"], lm.logits["null"])
    lm.prime([], {"prompt": ""})
    np.testing.assert_allclose(lm.logits["text"], lm.logits["null"])


def test_set_prompt_while_playing_replaces_only_the_condition(lm):
    lm.prime([], {"prompt": "a flute"})
    for _ in range(6):
        lm.step()
    before = lm.caches["text"].k.copy()
    lm.set_prompt("a brass section")
    after = lm.caches["text"].k
    assert not np.allclose(before[:, :, 0], after[:, :, 0])
    np.testing.assert_array_equal(before[:, :, 1:], after[:, :, 1:])
    assert lm.prompt == "a brass section"


def test_memory_stays_flat_while_streaming(lm):
    lm.prime([], {"prompt": "a marimba"})
    stream = lm.stream(chunk_frames=5)
    for _ in range(60):
        next(stream)
    assert len(lm.codes) <= lm.decoder_context + 5
    assert lm.caches["text"].positions.max() > lm.context  # the window slid


def test_bad_context_field_is_one_line_naming_it(tiny_codec_lm_bundle, tmp_path):
    copy = tmp_path / "bundle"
    shutil.copytree(tiny_codec_lm_bundle, copy)
    manifest = yaml.safe_load((copy / "manifest.yaml").read_text())
    manifest["context"] = "long"
    (copy / "manifest.yaml").write_text(yaml.safe_dump(manifest))
    with pytest.raises(BundleError, match="field 'context'"):
        CodecLM(load_bundle(copy))
