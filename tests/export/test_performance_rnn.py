"""Export: a parity-checked bundle, or no bundle at all."""

from __future__ import annotations

import pytest

from cadenza.errors import CadenzaError
from cadenza.export.checkpoint import export_checkpoint
from cadenza.export.performance_rnn import parity_check, step_graph
from cadenza.training.config import ModelConfig
from cadenza.training.loop import load_checkpoint, model_from_checkpoint
from cadenza.training.performance_rnn import PerformanceRNN


def test_parity_within_tolerance(tiny_run):
    model = model_from_checkpoint(load_checkpoint(tiny_run / "best.pt"))
    assert parity_check(model, step_graph(model)) <= 1e-4


def test_a_graph_that_disagrees_is_refused(tiny_run):
    model = model_from_checkpoint(load_checkpoint(tiny_run / "best.pt"))
    other = PerformanceRNN(ModelConfig(**{**vars(model.config)})).eval()  # fresh weights
    with pytest.raises(CadenzaError, match="parity check failed"):
        parity_check(model, step_graph(other))


def test_export_refuses_what_is_not_a_checkpoint(tmp_path):
    bogus = tmp_path / "bogus.pt"
    bogus.write_bytes(b"not a checkpoint")
    with pytest.raises(CadenzaError, match="bogus.pt: not a readable checkpoint"):
        export_checkpoint(bogus, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    with pytest.raises(CadenzaError, match="no such checkpoint"):
        export_checkpoint(tmp_path / "missing.pt", tmp_path / "out")


def test_export_sets_the_sampling_defaults_the_plugin_starts_with(tiny_run, tmp_path):
    from cadenza.plugins import load_generator

    out = export_checkpoint(tiny_run / "best.pt", tmp_path / "b",
                            sampling={"temperature": 0.9, "top_p": 0.9, "max_voices": 4})
    knobs = load_generator(out).knobs
    assert (knobs.temperature, knobs.top_k, knobs.top_p, knobs.max_voices) == (0.9, 0, 0.9, 4)


@pytest.mark.parametrize("sampling, problem", [
    ({"top_p": 0.0}, "sampling.top_p"), ({"warmth": 1}, "no sampling knob 'warmth'")])
def test_a_bad_sampling_default_is_refused_and_the_bundle_kept(tiny_run, tmp_path, sampling,
                                                                problem):
    from cadenza.export.checkpoint import set_sampling

    out = export_checkpoint(tiny_run / "best.pt", tmp_path / "b")
    before = (out / "manifest.yaml").read_text()
    with pytest.raises(CadenzaError, match=problem):
        set_sampling(out, sampling)
    assert (out / "manifest.yaml").read_text() == before
