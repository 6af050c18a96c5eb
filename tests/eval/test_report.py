"""`cadenza eval` end to end on a tiny trained bundle and a tiny real corpus."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cadenza.cli import main
from cadenza.eval.critic import load_critic
from cadenza.eval.report import EvalSettings, evaluate_bundle, evaluate_many, truncate_split

SMALL = dict(samples=4, seconds=5.0, primer_seconds=2.0, piano_rolls=2)


@pytest.fixture(scope="module")
def report(tiny_bundle, tiny_corpus, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("eval")
    evaluate_bundle(tiny_bundle, out, data=tiny_corpus, settings=EvalSettings(**SMALL),
                    critic=load_critic(), progress=False)
    return out


def test_report_holds_likelihoods_beside_both_ngram_baselines(report):
    likelihood = json.loads((report / "results.json").read_text())["likelihood"]
    assert set(likelihood) == {"nll", "bigram", "trigram", "events"}
    assert all(likelihood[k] > 0 for k in ("nll", "bigram", "trigram"))


def test_report_compares_every_feature_and_the_reference(report):
    results = json.loads((report / "results.json").read_text())
    for part in ("comparison", "reference"):
        rows = results[part]["features"]
        assert len(rows) == 9 and all(0 <= r["overlap"] <= 1.01 for r in rows)


def test_report_markdown_shows_tables_and_existing_pictures(report):
    text = (report / "report.md").read_text()
    assert "| real held-out, half vs half" in text and "| pitch class histogram |" in text
    pictures = [line.split("](")[1].rstrip(")") for line in text.splitlines() if "![" in line]
    assert len(pictures) == 2 + 3  # two piano rolls, transitions, two density pictures
    assert all((report / p).stat().st_size > 1000 for p in pictures)


def test_report_gives_the_style_the_critic_hears_in_each_sample(report):
    styles = json.loads((report / "results.json").read_text())["styles"]
    assert sum(styles["generated"].values()) == SMALL["samples"]
    assert "style (critic)" in (report / "report.md").read_text()


def test_report_writes_every_sample_as_midi(report):
    assert len(list((report / "samples").glob("*.mid"))) == SMALL["samples"]


def test_truncate_split_keeps_whole_sequences_then_part_of_the_last(tiny_corpus):
    from cadenza.corpus.prepare import load_split

    tokens, offsets = truncate_split(*load_split(tiny_corpus, "valid"), 500)
    assert len(tokens) - (len(offsets) - 1) == 500 and offsets[-1] == len(tokens)


def test_compare_puts_bundles_in_one_table(tiny_bundle, tiny_corpus, tmp_path):
    evaluate_many([str(tiny_bundle), str(tiny_bundle)], tmp_path, data=tiny_corpus,
                  settings=EvalSettings(**{**SMALL, "samples": 2, "nll_events": 300}),
                  progress=False)
    table = [line for line in (tmp_path / "report.md").read_text().splitlines()
             if line.startswith("| tiny")]
    assert len(table) == 2 and (tmp_path / "tiny-2" / "report.md").is_file()


def test_cli_refuses_a_bad_value_in_one_line(tmp_path, capsys):
    assert main(["eval", "--seconds", "0", "-o", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("cadenza: error:") and "--seconds" in err and "\n" not in err


def test_cli_refuses_a_missing_bundle(tmp_path, capsys):
    assert main(["eval", str(tmp_path / "nothing"), "-o", str(tmp_path)]) == 2
    assert "no such bundle" in capsys.readouterr().err


def test_split_valid_scores_and_compares_with_the_validation_pieces(tiny_bundle, tiny_corpus,
                                                                    tmp_path):
    from cadenza.corpus.prepare import load_split
    from cadenza.eval.samples import held_out_pieces, real_windows

    settings = EvalSettings(**{**SMALL, "samples": 2, "split": "valid"})
    results = evaluate_bundle(tiny_bundle, tmp_path, data=tiny_corpus, settings=settings,
                              progress=False)
    tokens, offsets = load_split(tiny_corpus, "valid")
    assert results["likelihood"]["events"] == len(tokens) - (len(offsets) - 1)
    windows = real_windows(held_out_pieces(tiny_corpus, "valid"), SMALL["seconds"])
    assert results["real_windows"] == len(windows)
    assert len(windows) != len(real_windows(held_out_pieces(tiny_corpus), SMALL["seconds"]))
    assert "(valid split)" in (tmp_path / "report.md").read_text()


def test_cli_reports_the_bundle_with_the_compared_ones_beside_it(tiny_bundle, tiny_corpus,
                                                                 tmp_path, capsys):
    """`eval A --compare B`: A is the report's first row, B beside it (A was dropped once)."""
    assert main(["eval", str(tiny_bundle), "--compare", str(tiny_bundle), "--data",
                 str(tiny_corpus), "--samples", "2", "--seconds", "2", "--nll-events", "100",
                 "--no-critic", "--no-progress", "-o", str(tmp_path)]) == 0
    rows = [line for line in (tmp_path / "report.md").read_text().splitlines()
            if line.startswith("| tiny")]
    assert len(rows) == 2
