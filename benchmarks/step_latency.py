"""Per-step latency of the generator plugins, each beside its baseline, in one run.

performance-rnn: the plugin (onnxruntime) against PyTorch eager, batch 1, one thread each,
for the shipped bundle's model size and for Magenta's default 3x512. The PyTorch side runs
the same architecture with the bundle's weights where a checkpoint is given, random weights
otherwise (latency does not depend on the values).

transformer: one step with the key/value cache full (the window sliding) against recomputing
the whole window each step (the prefill graph), at contexts of 256, 1024 and 2048 events, for
the shipped bundle (or, before `make models`, the shipped configuration with random weights).

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
from cadenza.errors import BundleError
from cadenza.export.performance_rnn import export_performance_rnn
from cadenza.export.transformer import export_transformer
from cadenza.plugins import load_generator
from cadenza.plugins.transformer import MusicTransformer as TransformerPlugin
from cadenza.training.config import ModelConfig, TrainConfig, load_config
from cadenza.training.loop import load_checkpoint
from cadenza.training.performance_rnn import PerformanceRNN, PerformanceRNNStep
from cadenza.training.transformer import MusicTransformer

CONTEXTS = (256, 1024, 2048)


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


def transformer_bundle(out: Path) -> Path:
    """The shipped transformer bundle, or the shipped configuration with random weights."""
    try:
        return default_bundle_path("transformer")
    except BundleError:
        config = load_config(Path(__file__).parent.parent / "configs" / "transformer.yaml")
        config.model.styles = ["any", "bach"]
        torch.manual_seed(0)
        model = MusicTransformer(config.model).eval()
        checkpoint = {"kind": "transformer", "config": {**config.to_dict(), "out": str(out)},
                      "model": model.state_dict(), "step": 0, "valid_nll": 0.0}
        return export_transformer(checkpoint, out, name="random weights, shipped configuration")


def time_transformer(bundle: Path, context: int, steps: int, recompute_steps: int):
    """(cached plugin step, recomputed window) latencies with `context` events in the window."""
    generator = TransformerPlugin(load_bundle(bundle), seed=0, context=context)
    rng = np.random.default_rng(0)
    generator.prime(rng.integers(0, 388, context - 1))  # a full window: every step slides it
    cached = []
    for i in range(steps + 100):
        t0 = time.perf_counter()
        generator.step()
        if i >= 100:
            cached.append(time.perf_counter() - t0)
    window = np.array([[generator.style_token(None), *generator.history]], dtype=np.int64)
    recomputed = []
    for i in range(recompute_steps + 5):
        t0 = time.perf_counter()
        logits, _, _ = generator.prefill_session.run(None, {"tokens": window})
        generator.sample_event(logits[0])
        if i >= 5:
            recomputed.append(time.perf_counter() - t0)
    return cached, recomputed


def transformer_table(steps: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        bundle = transformer_bundle(Path(tmp) / "transformer")
        name = load_bundle(bundle).name
        print(f"\ntransformer per-step latency ({name}), batch 1, 1 thread, window full and "
              "sliding; ms")
        print("| context | KV cache p50 | KV cache p99 | KV cache max | recompute window p50 | "
              "recompute p99 | speed-up (p50) |")
        print("|---:|---:|---:|---:|---:|---:|---:|")
        for context in CONTEXTS:
            cached, recomputed = time_transformer(bundle, context, steps, max(20, steps // 50))
            c50, c99, cmax = (v / 1e3 for v in percentiles(cached))
            r50, r99, _ = (v / 1e3 for v in percentiles(recomputed))
            print(f"| {context} | {c50:.2f} | {c99:.2f} | {cmax:.2f} | {r50:.2f} | {r99:.2f} | "
                  f"{r50 / c50:.0f}x |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--checkpoint", help="use these weights for the PyTorch side")
    parser.add_argument("--only", choices=["performance-rnn", "transformer"])
    args = parser.parse_args()
    torch.set_num_threads(1)

    if args.only != "performance-rnn":
        transformer_table(args.steps)
    if args.only == "transformer":
        return
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
