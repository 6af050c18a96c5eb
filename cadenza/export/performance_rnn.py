"""Export a Performance RNN checkpoint to a one-step ONNX graph and a bundle.

The bundle is written only after a parity check: a greedy rollout gives the same tokens in
PyTorch and onnxruntime, and their logits agree to 1e-4 at every step.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from cadenza.bundle import FORMAT, write_bundle
from cadenza.errors import CadenzaError
from cadenza.events import PERFORMANCE
from cadenza.export.onnx_io import training_record
from cadenza.manifest import PerformanceRepresentation, Sampling
from cadenza.plugins.manifests import PerformanceRNNManifest, RNNModel
from cadenza.training.loop import model_from_checkpoint
from cadenza.training.performance_rnn import PerformanceRNN, PerformanceRNNStep

PARITY_STEPS = 200
PARITY_TOLERANCE = 1e-4
START_EVENT = PERFORMANCE.time_shift + PERFORMANCE.max_shift_steps  # as the plugin starts


def step_graph(model: PerformanceRNN) -> bytes:
    layers, hidden = model.config.num_layers, model.config.hidden_size
    example = (
        torch.zeros(1, dtype=torch.int64),
        torch.zeros(layers, 1, hidden),
        torch.zeros(layers, 1, hidden),
    )
    buffer = io.BytesIO()
    # The TorchScript exporter warns that it is deprecated and that LSTMs want batch 1 (ours
    # is batch 1 by design); it is kept because it exports LSTMs without onnxscript.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            PerformanceRNNStep(model).eval(),
            example,
            buffer,
            dynamo=False,
            input_names=["token", "h", "c"],
            output_names=["logits", "h_out", "c_out"],
            opset_version=17,
        )
    return buffer.getvalue()


@torch.no_grad()
def parity_check(model: PerformanceRNN, graph: bytes, steps: int = PARITY_STEPS) -> float:
    """Greedy rollouts in both runtimes; returns the largest logit difference seen."""
    session = ort.InferenceSession(graph, providers=["CPUExecutionProvider"])
    step = PerformanceRNNStep(model).eval()
    h_t, c_t = model.initial_state(1)
    h_o, c_o = h_t.numpy(), c_t.numpy()
    token_t = token_o = START_EVENT
    worst = 0.0
    for i in range(steps):
        logits_t, h_t, c_t = step(torch.tensor([token_t]), h_t, c_t)
        logits_o, h_o, c_o = session.run(
            None, {"token": np.array([token_o], np.int64), "h": h_o, "c": c_o}
        )
        worst = max(worst, float(np.abs(logits_t.numpy() - logits_o).max()))
        token_t, token_o = int(logits_t.argmax()), int(logits_o.argmax())
        if token_t != token_o:
            raise CadenzaError(
                f"parity check failed: greedy tokens differ at step {i} "
                f"({token_t} in PyTorch, {token_o} in onnxruntime)"
            )
        if worst > PARITY_TOLERANCE:
            raise CadenzaError(
                f"parity check failed: logits differ by {worst:.2e} at step {i} "
                f"(tolerance {PARITY_TOLERANCE:.0e})"
            )
    return worst


def export_performance_rnn(checkpoint: dict, out_dir: str | Path, name: str | None = None) -> Path:
    model = model_from_checkpoint(checkpoint)
    graph = step_graph(model)
    worst = parity_check(model, graph)
    layers, hidden = model.config.num_layers, model.config.hidden_size
    state = {"shape": [layers, 1, hidden], "dtype": "float32"}
    config = checkpoint["config"]
    section = PerformanceRNNManifest(
        sampling=Sampling(temperature=1.0, top_k=0, top_p=1.0),
        representation=PerformanceRepresentation.of(PERFORMANCE),
        model=RNNModel.parse(config["model"], "model"),
    )
    manifest = {
        "format": FORMAT,
        "plugin": "performance-rnn",
        "name": name or Path(config["out"]).name,
        **section.to_dict(),
        "graphs": {"step": "step.onnx"},
        "io": {
            "step": {
                "inputs": {"token": {"shape": [1], "dtype": "int64"}, "h": state, "c": state},
                "outputs": {
                    "logits": {"shape": [1, model.config.vocab_size], "dtype": "float32"},
                    "h_out": state,
                    "c_out": state,
                },
            }
        },
        "training": training_record(checkpoint, model),
        "parity": {"steps": PARITY_STEPS, "max_abs_logit_diff": float(f"{worst:.3g}")},
    }
    return write_bundle(out_dir, manifest, {"step": graph})
