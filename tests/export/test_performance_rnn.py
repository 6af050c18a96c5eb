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
