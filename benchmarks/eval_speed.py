"""How long `cadenza eval` takes on the shipped bundle, stage by stage, beside its target.

    python benchmarks/eval_speed.py --samples 20 --seconds 20

The target (issue 7): 20 samples of 20 s, the whole report, in under 5 minutes on a 2-core
machine. The baseline beside our stages is that budget, and the time the same machine takes
to merely sample as many events as the samples hold (what no evaluation can go below).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from cadenza.bundle import default_bundle_path
from cadenza.eval.critic import load_critic
from cadenza.eval.report import EvalSettings, evaluate_bundle
from cadenza.plugins import load_generator

TARGET_SECONDS = 300.0


def bare_steps(bundle: Path, events: int) -> float:
    """Seconds to sample `events` events with nothing else around it."""
    generator = load_generator(bundle, seed=0)
    generator.prime(np.zeros(0, np.int16))
    started = time.perf_counter()
    for _ in range(events):
        generator.step()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", default=None)
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    bundle = Path(args.bundle) if args.bundle else default_bundle_path("performance-rnn")
    settings = EvalSettings(samples=args.samples, seconds=args.seconds)
    with tempfile.TemporaryDirectory() as out:
        results = evaluate_bundle(bundle, Path(out), settings=settings, critic=load_critic(),
                                  progress=False)
    events = sum(s["events"] for s in results["samples"])
    print(f"cadenza eval {bundle}: {args.samples} samples of {args.seconds:g} s")
    print(f"{'stage':<34}{'seconds':>10}")
    for stage, seconds in results["timings"].items():
        print(f"{stage:<34}{seconds:>10.2f}")
    print(f"{'total':<34}{results['seconds']:>10.2f}")
    print(f"{'baseline: the 5-minute target':<34}{TARGET_SECONDS:>10.2f}")
    print(f"{f'baseline: {events} bare steps':<34}{bare_steps(bundle, events):>10.2f}")


if __name__ == "__main__":
    main()
