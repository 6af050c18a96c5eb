"""The README's "Adding a model kind": examples/bigram.py, one module and one registry entry,
goes the whole way through the same commands as a shipped kind."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from cadenza.cli import main
from cadenza.generate import continue_primer
from cadenza.kinds import all_kinds, register_kind, unregister_kind
from cadenza.midi import load_notes
from cadenza.plugins import EventGenerator, load_generator, plugin_classes

PRIMER = Path(__file__).resolve().parents[1] / "cadenza" / "data" / "primers" / "chorale.mid"


@pytest.fixture
def bigram() -> Iterator[object]:
    from examples import bigram

    register_kind(bigram.KIND)  # as a notebook would
    yield bigram
    unregister_kind(bigram.NAME)


def test_an_installed_package_declares_its_kind_by_entry_point(tmp_path, monkeypatch):
    """What `pip install` of a package with the README's pyproject lines leaves on disk."""
    info = tmp_path / "cadenza_bigram-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: cadenza-bigram\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text('[cadenza.kinds]\nbigram = examples.bigram:KIND\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    kind = all_kinds()["bigram"]
    assert kind.trainer == "examples.bigram:train" and kind.live == "call-response"
    assert "bigram" in plugin_classes()


def test_the_example_kind_is_one_registry_entry(bigram):
    kind = all_kinds()["bigram"]
    assert kind is bigram.KIND and kind.live == "call-response"
    assert plugin_classes()["bigram"] is bigram.Bigram


def test_the_example_kind_trains_exports_generates_and_evaluates(bigram, tiny_corpus, tmp_path):
    run, bundle, report = tmp_path / "run", tmp_path / "bundle", tmp_path / "report"
    assert main(["train", "bigram", "--data", str(tiny_corpus), "--out", str(run),
                 "--no-progress"]) == 0
    assert main(["export", str(run / "best.pt"), "-o", str(bundle)]) == 0

    generator = load_generator(bundle, seed=3)
    assert isinstance(generator, bigram.Bigram) and isinstance(generator, EventGenerator)
    first = continue_primer(generator, load_notes(PRIMER), seconds=4.0)
    again = continue_primer(load_generator(bundle, seed=3), load_notes(PRIMER), seconds=4.0)
    assert len(first.events) > 0 and np.array_equal(first.events, again.events)
    assert len(first.notes) > 0

    assert main(["eval", str(bundle), "--samples", "2", "--seconds", "2",
                 "--primer-seconds", "1", "--nll-events", "500", "--no-critic",
                 "--no-progress", "-o", str(report)]) == 0
    results = json.loads((report / "results.json").read_text())
    assert results["plugin"] == "bigram" and results["likelihood"]["nll"] > 0


def test_a_bad_smoothing_in_its_manifest_is_one_line(bigram, tiny_corpus, tmp_path, capsys):
    run, bundle = tmp_path / "run", tmp_path / "bundle"
    main(["train", "bigram", "--data", str(tiny_corpus), "--out", str(run), "--no-progress"])
    main(["export", str(run / "best.pt"), "-o", str(bundle)])
    manifest = bundle / "manifest.yaml"
    manifest.write_text(manifest.read_text().replace("smoothing: 0.1", "smoothing: -1"))
    assert main(["generate", "--bundle", str(bundle), "-o", str(tmp_path / "x.mid")]) == 2
    error = capsys.readouterr().err.strip()
    assert "smoothing" in error and len(error.splitlines()) == 1
