"""Per-step latency of the performance-rnn plugin (onnxruntime) against PyTorch eager.

Batch 1, one thread each, in the same run. For the shipped bundle's model size and for
Magenta's default 3x512. The PyTorch side runs the same architecture with the bundle's
weights where a checkpoint is given, random weights otherwise (latency does not depend
on the values).

    python benchmarks/step_latency.py [--steps 3000] [--checkpoint runs/performance-rnn/best.pt]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from cadenza.bundle import default_bundle_path, load_bundle
from cadenza.export.performance_rnn import export_performance_rnn
from cadenza.plugins import load_generator
from cadenza.training.config import ModelConfig, TrainConfig
from cadenza.training.loop import load_checkpoint
from cadenza.training.performance_rnn import PerformanceRNN, PerformanceRNNStep


def percentiles(samples: list[float]) -> tuple[float, float, float]:
    us = np.array(samples) * 1e6
    return float(np.percentile(us, 50)), float(np.percentile(us, 99)), float(us.max())


def time_torch(model: PerformanceRNN, steps: int, warmup: int = 200) -> list[float]:
    step = PerformanceRNNStep(model).eval()
    h, c = model.initial_state(1)
    token = torch.tensor([300])
    samples = []
    with torch.inference_mode():
        for i in range(steps + warmup):
            t0 = time.perf_counter()
            logits, h, c = step(token, h, c)
            token = logits.argmax(-1)
            if i >= warmup:
                samples.append(time.perf_counter() - t0)
    return samples


def time_plugin(bundle: Path, steps: int, warmup: int = 200) -> tuple[list[float], list[float]]:
    """(graph only, full plugin step with sampling) for the bundle in onnxruntime."""
    generator = load_generator(bundle, seed=0)
    generator.prime([])
    feeds = {"token": np.array([300], np.int64), "h": generator.h, "c": generator.c}
    graph, full = [], []
    for i in range(steps + warmup):
        t0 = time.perf_counter()
        _, feeds["h"], feeds["c"] = generator.session.run(None, feeds)
        t1 = time.perf_counter()
        generator.step()
        t2 = time.perf_counter()
        if i >= warmup:
            graph.append(t1 - t0)
            full.append(t2 - t1)
    return graph, full


def bundle_for(model: PerformanceRNN, out: Path) -> Path:
    checkpoint = {
        "kind": "performance-rnn",
        "config": {**TrainConfig().to_dict(), "model": vars(model.config), "out": str(out)},
        "model": model.state_dict(),
        "step": 0,
        "valid_nll": 0.0,
    }
    return export_performance_rnn(checkpoint, out, name=out.name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--checkpoint", help="use these weights for the PyTorch side")
    args = parser.parse_args()
    torch.set_num_threads(1)

    rows = []
    shipped = load_bundle(default_bundle_path("performance-rnn"))
    configs = [("shipped " + shipped.name, ModelConfig(**shipped.manifest["model"]), shipped.path),
               ("Magenta default 3x512", ModelConfig(embed_dim=388, hidden_size=512,
                                                     num_layers=3), None)]
    with tempfile.TemporaryDirectory() as tmp:
        for label, config, bundle in configs:
            torch.manual_seed(0)
            model = PerformanceRNN(config).eval()
            if args.checkpoint and bundle is not None:
                model.load_state_dict(load_checkpoint(args.checkpoint)["model"])
            if bundle is None:
                bundle = bundle_for(model, Path(tmp) / "magenta")
            eager = percentiles(time_torch(model, args.steps))
            graph, full = (percentiles(s) for s in time_plugin(bundle, args.steps))
            rows.append((label, "PyTorch eager", *eager, 1.0))
            rows.append((label, "onnxruntime graph", *graph, eager[0] / graph[0]))
            rows.append((label, "plugin step (ort + sampling)", *full, eager[0] / full[0]))

    print(f"per-step latency, batch 1, 1 thread, {args.steps} steps "
          f"(torch {torch.__version__})")
    print("| model | runtime | p50 (us) | p99 (us) | max (us) | speed-up vs eager (p50) |")
    print("|---|---|---:|---:|---:|---:|")
    for label, runtime, p50, p99, worst, speedup in rows:
        print(f"| {label} | {runtime} | {p50:.0f} | {p99:.0f} | {worst:.0f} | {speedup:.1f}x |")


if __name__ == "__main__":
    main()
