"""Latency of a 2-bar VAE answer: the plugin (onnxruntime, host sampling) against PyTorch eager,
one thread each, batch 1.

An answer, as the live engine asks for it at the end of a call: quantise the call's events at
the engine's tempo, encode its last segment, run the transition, decode the next segment step
by step with sampling, and encode it back to performance events. The PyTorch side runs the
same work for the model (encode, transition, the decoder's steps with the same sampling); it
uses the shipped bundle's architecture with random weights (latency does not depend on the
values). Target: under 20 ms.

    python benchmarks/vae_latency.py [--answers 300] [--bundle models/vae]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from cadenza.bundle import default_bundle_path, load_bundle
from cadenza.events import PERFORMANCE
from cadenza.midi import load_notes
from cadenza.pianoroll import read_grid_midi
from cadenza.plugins import load_generator
from cadenza.training.vae import SegmentVAE, VAEModelConfig

PRIMER = Path(__file__).parent.parent / "cadenza" / "data" / "primers" / "chorale.mid"
TARGET_MS = 20.0


def call_events() -> np.ndarray:
    notes = load_notes(PRIMER)
    return PERFORMANCE.encode(notes[notes["start"] < 4.0])


def time_plugin(bundle: Path, answers: int, warmup: int = 20) -> tuple[list[float], list[float]]:
    """(the whole answer through the Generator contract, the decoder's steps alone)."""
    generator = load_generator(bundle, seed=0)
    generator.knobs.temperature = 1.0
    events = call_events()
    whole, decode = [], []
    z = generator.prior()
    for i in range(answers + warmup):
        generator.prime(events, {"bpm": 120.0})
        t0 = time.perf_counter()
        generator.step()  # the first step builds the whole segment
        t1 = time.perf_counter()
        generator.decode(z)
        t2 = time.perf_counter()
        if i >= warmup:
            whole.append(t1 - t0)
            decode.append(t2 - t1)
    return whole, decode


@torch.inference_mode()
def time_torch(
    config: VAEModelConfig, roll: np.ndarray, answers: int, warmup: int = 20
) -> list[float]:
    model = SegmentVAE(config).eval()
    rng = np.random.default_rng(0)
    x = torch.from_numpy(roll)[None]
    samples = []
    for i in range(answers + warmup):
        t0 = time.perf_counter()
        mu, _ = model.encode(x)
        z, _ = model.next_code(mu)
        state = model.initial_state(z)
        frame = torch.zeros(1, 1, 3, model.pitches)
        for _ in range(model.steps):
            logits, state = model.decode(z, frame, state)
            p = torch.sigmoid(logits[0, 0, :2]).numpy()
            chosen = rng.random(p.shape) < p
            sounding = (frame[0, 0, 0] + frame[0, 0, 1]).numpy() > 0
            onset, hold = chosen[0], chosen[1] & sounding & ~chosen[0]
            frame = torch.from_numpy(np.stack([onset, hold, onset * 0.8]).astype(np.float32))[
                None, None
            ]
        if i >= warmup:
            samples.append(time.perf_counter() - t0)
    return samples


def row(name: str, samples: list[float]) -> str:
    ms = np.array(samples) * 1e3
    p50, p99, worst = np.percentile(ms, 50), np.percentile(ms, 99), ms.max()
    verdict = "yes" if p99 < TARGET_MS else "no"
    return f"| {name} | {p50:.2f} | {p99:.2f} | {worst:.2f} | {verdict} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--answers", type=int, default=300)
    parser.add_argument("--bundle", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    bundle_path = args.bundle or default_bundle_path("vae")
    bundle = load_bundle(bundle_path)
    config = VAEModelConfig(**bundle.manifest["model"])
    generator = load_generator(bundle_path)
    roll = generator.segments_of(generator_piece(generator))[0]

    whole, decode = time_plugin(bundle_path, args.answers)
    eager = time_torch(config, roll, args.answers)
    grid = generator.grid
    print(
        f"VAE answer latency: {grid.bars} bars of {grid.segment_steps} steps, latent "
        f"{config.latent}, decoder {config.decoder_layers}x{config.decoder_hidden}, "
        f"{args.answers} answers, one thread\n"
    )
    print(f"| path | p50 ms | p99 ms | max ms | p99 < {TARGET_MS:.0f} ms |")
    print("|---|---|---|---|---|")
    print(row("plugin: a whole answer (quantise, encode, transition, decode, events)", whole))
    print(row("plugin: decode alone (32 ONNX steps + host sampling)", decode))
    print(row("baseline: PyTorch eager (encode, transition, decode)", eager))


def generator_piece(generator):
    return read_grid_midi(PRIMER.read_bytes(), PRIMER, generator.grid.steps_per_quarter)


if __name__ == "__main__":
    main()
