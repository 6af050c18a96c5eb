"""A whole model kind in one module: a bigram model of performance events.

The README's "Adding a model kind" walks through it, and tests/test_example_kind.py runs it:
train it on a prepared corpus, export it to a bundle, then generate, evaluate and play it
like any shipped kind. The pieces, each a plain function or class:

- `BigramConfig` + `load_config`: its training settings (a YAML file and `--set KEY=VALUE`);
- `train`: counts event pairs in the train split, writes `OUT/best.pt`;
- `export`: the checkpoint to a bundle: one ONNX graph (a table lookup: the last event's row
  of log-probabilities) and its manifest section;
- `BigramManifest`: that section, written by `export` and read back, checked, by the plugin;
- `Bigram`: the runtime plugin, an EventGenerator (numpy + onnxruntime, no torch);
- `KIND`: the one registry entry. A package declares it under the entry-point group
  `cadenza.kinds` (`bigram = "examples.bigram:KIND"`); a notebook calls
  `cadenza.kinds.register_kind(KIND)`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from onnx import TensorProto, helper, numpy_helper

from cadenza.bundle import FORMAT, write_bundle
from cadenza.corpus.token_files import corpus_representation, load_split
from cadenza.kinds import ModelKind
from cadenza.manifest import PerformanceRepresentation, PluginManifest, Sampling, setting
from cadenza.plugins.base import EventGenerator, create_session
from cadenza.training.runner import load_checkpoint
from cadenza.training.settings import fill_settings

NAME = "bigram"


# --- training -----------------------------------------------------------------------------
@dataclass
class BigramConfig:
    kind: str = NAME
    data: str = ""  # a prepared corpus (`cadenza corpus prepare`)
    out: str = "runs/bigram"
    smoothing: float = 0.1  # added to every pair's count: no event is ever impossible


def load_config(path: str | None, overrides: list[str]) -> BigramConfig:
    return fill_settings(BigramConfig(), path, overrides, kind=NAME)


def pair_counts(corpus: Path, split: str, vocab: int) -> np.ndarray:
    """(vocab, vocab) counts of event b following event a, within each sequence."""
    tokens, offsets = load_split(corpus, split)
    counts = np.zeros((vocab, vocab), dtype=np.float64)
    for start, end in zip(offsets[:-1], offsets[1:], strict=True):
        sequence = np.asarray(tokens[start:end], dtype=np.int64)
        np.add.at(counts, (sequence[:-1], sequence[1:]), 1.0)
    return counts


def train(config: BigramConfig, *, resume: bool = False, progress: bool = True) -> dict:
    """Count, normalise, score the valid split; `resume` means nothing to a count."""
    representation = corpus_representation(config.data)
    vocab = PerformanceRepresentation.parse(representation, "representation").codec().num_classes
    counts = pair_counts(Path(config.data), "train", vocab) + config.smoothing
    log_probs = np.log(counts / counts.sum(axis=1, keepdims=True))
    valid = pair_counts(Path(config.data), "valid", vocab)
    valid_nll = float(-(valid * log_probs).sum() / max(valid.sum(), 1.0))
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    checkpoint = {"kind": NAME, "config": asdict(config), "step": 1, "valid_nll": valid_nll,
                  "representation": representation,
                  "log_probs": torch.from_numpy(log_probs.astype(np.float32))}
    torch.save(checkpoint, out / "best.pt")
    if progress:
        print(f"bigram: valid NLL {valid_nll:.3f} nats/event -> {out / 'best.pt'}")
    return {"valid_nll": valid_nll}


# --- the bundle ---------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class BigramManifest(PluginManifest):
    representation: PerformanceRepresentation = field(default_factory=PerformanceRepresentation)
    smoothing: float = setting(0.1, low=0.0)


def lookup_graph(log_probs: np.ndarray) -> bytes:
    """ONNX: event (int64 [1]) -> logits (float [1, vocab]), a row of the table."""
    table = numpy_helper.from_array(log_probs.astype(np.float32), "table")
    node = helper.make_node("Gather", ["table", "event"], ["logits"], axis=0)
    graph = helper.make_graph(
        [node], NAME, [helper.make_tensor_value_info("event", TensorProto.INT64, [1])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, log_probs.shape[1]])],
        initializer=[table],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def export(checkpoint: dict, out_dir: str | Path, name: str | None = None) -> Path:
    log_probs = checkpoint["log_probs"].numpy()
    section = BigramManifest(sampling=Sampling(),
                             representation=PerformanceRepresentation.parse(
                                 checkpoint["representation"], "representation"),
                             smoothing=checkpoint["config"]["smoothing"]).checked()
    manifest = {
        "format": FORMAT, "plugin": NAME, "name": name or Path(checkpoint["config"]["out"]).name,
        **section.to_dict(),
        "graphs": {"step": "step.onnx"},
        "io": {"step": {"inputs": {"event": {"shape": [1], "dtype": "int64"}},
                        "outputs": {"logits": {"shape": [1, len(log_probs)],
                                               "dtype": "float32"}}}},
        "training": {"data": checkpoint["config"]["data"],
                     "valid_nll": round(checkpoint["valid_nll"], 4)},
    }
    return write_bundle(out_dir, manifest, {"step": lookup_graph(log_probs)})


def export_checkpoint_file(path: str | Path, out_dir: str | Path) -> Path:
    """`cadenza export` does this through the registry; here for a notebook."""
    return export(load_checkpoint(path), out_dir)


# --- the runtime plugin -------------------------------------------------------------------
class Bigram(EventGenerator):
    plugin = NAME
    manifest_type = BigramManifest
    manifest: BigramManifest

    def __init__(self, bundle: Any, *, seed: int | None = None):
        super().__init__(bundle, seed=seed)
        self.codec = self.manifest.representation.codec()
        self.session = create_session(bundle, "step")
        # With no context it starts after a second of silence, as performance-rnn does.
        self.start_event = self.codec.time_shift + self.codec.max_shift_steps
        self.reset()

    def reset(self) -> None:
        self.last = self.start_event

    def prime(self, events: Any, conditions: dict[str, Any] | None = None) -> None:
        self.reset()
        self.extend(events)

    def extend(self, events: Any) -> None:
        for event in events:
            self.last = int(event)

    @property
    def logits(self) -> np.ndarray:
        """The next event's log-probabilities (`cadenza eval` scores held-out NLL with it)."""
        return self.session.run(None, {"event": np.array([self.last], dtype=np.int64)})[0][0]

    def step(self) -> int:
        self.last = self.sample_event(self.logits)
        return self.last

    def context_state(self) -> int:
        return self.last

    def restore_context(self, state: int) -> None:
        self.last = state


# --- the registry entry -------------------------------------------------------------------
KIND = ModelKind(
    NAME, "a bigram of performance events (the example kind, examples/bigram.py)",
    config=f"{__name__}:load_config", trainer=f"{__name__}:train",
    exporter=f"{__name__}:export", runtime=f"{__name__}:Bigram",
    evaluator="cadenza.eval.report:evaluate_events", live="call-response",
)
