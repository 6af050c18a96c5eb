"""`cadenza eval` on a codec-lm bundle: the instrument check, on a tiny real bundle."""

from __future__ import annotations

import json

import pytest

from cadenza.eval.audio import load_instrument_critic
from cadenza.eval.codec_lm import evaluate_codec_lm, prompts_for

critic = load_instrument_critic()
needs_critic = pytest.mark.skipif(critic is None, reason="no shipped instrument critic")


def test_prompts_name_the_instrument_first_bare_then_in_captions():
    prompts = prompts_for("church organ", 4)
    assert prompts[0] == "church organ"
    assert all("church organ" in p for p in prompts)
    assert prompts[1] == "a church organ playing a slow Bach chorale in a middle register"
    assert prompts_for("choir", 2)[1].startswith("a choir singing a ")  # the corpus' words


@needs_critic
def test_report_has_a_rate_per_instrument_and_the_distances(tiny_codec_lm_bundle, text_encoder,
                                                             tiny_audio_corpus, tmp_path):
    results = evaluate_codec_lm(tiny_codec_lm_bundle, tmp_path, data=str(tiny_audio_corpus),
                                clips=1, seconds=2.0, progress=False)
    assert set(results["recognition"]) == set(critic.instruments)
    assert all(0.0 <= rate <= 1.0 for rate in results["recognition"].values())
    assert results["chance"] == pytest.approx(1 / len(critic.instruments), abs=1e-4)
    for key in ("frechet_generated_test", "frechet_unconditioned_test", "frechet_valid_test"):
        assert results[key] >= 0
    assert json.loads((tmp_path / "results.json").read_text())["recognition"] == results[
        "recognition"]
    assert "| **mean** |" in (tmp_path / "report.md").read_text()


def test_eval_refuses_the_valid_split_for_a_codec_lm_in_one_line(tiny_codec_lm_bundle, tmp_path,
                                                                 capsys):
    from cadenza.cli import main

    # Its valid clips are the reference the generated ones are measured against.
    assert main(["eval", str(tiny_codec_lm_bundle), "--split", "valid", "-o",
                 str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("cadenza: error:") and "--split" in err and "\n" not in err
    assert not (tmp_path / "out").exists()
