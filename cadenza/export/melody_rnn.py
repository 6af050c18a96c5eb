"""Export a Melody RNN checkpoint (any variant) to a one-step ONNX graph and a bundle.

The graph takes one input vector (computed on the host by cadenza.melody) and the state, and
gives the logits and the new state; the attention variant's state adds its attention vector
and its window of the last outputs. The bundle is written only after a parity check: a
greedy rollout, its inputs built from its own melody, gives the same events in PyTorch and
onnxruntime, and their logits agree to 1e-4 at every step.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from cadenza.bundle import FORMAT, write_bundle
from cadenza.errors import CadenzaError
from cadenza.export.onnx_io import onnx_graph, training_record
from cadenza.manifest import Sampling
from cadenza.plugins.manifests import MelodyRepresentation, MelodyRNNManifest, MelodyRNNModel
from cadenza.training.melody_rnn import MelodyRNN, MelodyRNNStep
from cadenza.training.melody_rnn_train import model_from_checkpoint

PARITY_STEPS = 200
PARITY_TOLERANCE = 1e-4
DEFAULT_BPM = 120.0


def state_names(model: MelodyRNN) -> list[str]:
    return ["h", "c", "attention", "window"] if model.attends else ["h", "c"]


def step_graph(model: MelodyRNN) -> bytes:
    example = (torch.zeros(1, model.input_size), *model.initial_state(1))
    names = state_names(model)
    return onnx_graph(MelodyRNNStep(model).eval(), example, ["inputs", *names],
                      ["logits", *(f"{n}_out" for n in names)], dynamic={})


@torch.no_grad()
def parity_check(model: MelodyRNN, graph: bytes, steps: int = PARITY_STEPS) -> float:
    """Greedy rollouts in both runtimes from one NO_EVENT; the largest logit difference."""
    session = ort.InferenceSession(graph, providers=["CPUExecutionProvider"])
    step = MelodyRNNStep(model).eval()
    encoding, variant, names = model.encoding, model.config.variant, state_names(model)
    state_t = model.initial_state(1)
    state_o = [s.numpy() for s in state_t]
    melody_t, melody_o = [0], [0]
    worst = 0.0
    for i in range(steps):
        x_t = encoding.inputs(melody_t, variant, skip=len(melody_t) - 1)
        x_o = encoding.inputs(melody_o, variant, skip=len(melody_o) - 1)
        logits_t, *state_t = step(torch.from_numpy(x_t), *state_t)
        logits_o, *state_o = session.run(None, {"inputs": x_o, **dict(zip(names, state_o,
                                                                          strict=True))})
        worst = max(worst, float(np.abs(logits_t.numpy() - logits_o).max()))
        melody_t.append(encoding.decode_label(int(logits_t.argmax()), melody_t))
        melody_o.append(encoding.decode_label(int(logits_o.argmax()), melody_o))
        if melody_t[-1] != melody_o[-1]:
            raise CadenzaError(f"parity check failed: greedy events differ at step {i} "
                               f"({melody_t[-1]} in PyTorch, {melody_o[-1]} in onnxruntime)")
        if worst > PARITY_TOLERANCE:
            raise CadenzaError(f"parity check failed: logits differ by {worst:.2e} at step {i} "
                               f"(tolerance {PARITY_TOLERANCE:.0e})")
    return worst


def export_melody_rnn(checkpoint: dict, out_dir: str | Path, name: str | None = None) -> Path:
    model = model_from_checkpoint(checkpoint)
    graph = step_graph(model)
    worst = parity_check(model, graph)
    config, encoding = checkpoint["config"], model.encoding
    c = model.config
    state = {"h": [c.num_layers, 1, c.hidden_size], "c": [c.num_layers, 1, c.hidden_size],
             "attention": [1, c.hidden_size], "window": [1, c.attention_length, c.hidden_size]}
    states = {n: {"shape": state[n], "dtype": "float32"} for n in state_names(model)}
    section = MelodyRNNManifest(
        sampling=Sampling(temperature=1.0, top_k=0, top_p=1.0),
        representation=MelodyRepresentation.parse(
            {**encoding.to_dict(), "default_bpm": DEFAULT_BPM}, "representation"),
        model=MelodyRNNModel.parse(
            {**config["model"], "input_size": model.input_size,
             "output_size": model.output_size}, "model"),
    ).checked()
    manifest = {
        "format": FORMAT,
        "plugin": "melody-rnn",
        "name": name or Path(config["out"]).name,
        **section.to_dict(),
        "graphs": {"step": "step.onnx"},
        "io": {"step": {
            "inputs": {"inputs": {"shape": [1, model.input_size], "dtype": "float32"},
                       **states},
            "outputs": {"logits": {"shape": [1, model.output_size], "dtype": "float32"},
                        **{f"{n}_out": spec for n, spec in states.items()}},
        }},
        "training": training_record(checkpoint, model),
        "parity": {"steps": PARITY_STEPS, "max_abs_logit_diff": float(f"{worst:.3g}")},
    }
    return write_bundle(out_dir, manifest, {"step": graph})
