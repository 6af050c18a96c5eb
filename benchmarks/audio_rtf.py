"""Real-time factor of the codec-lm plugin: seconds of audio made per second of wall time.

Rows, in one run, all on one thread (onnxruntime intra-op threads 1, torch threads 1):
- offline: `generate_audio` of --offline-seconds (CFG on, so two LM passes a step, as live);
- streaming: `cadenza audio`'s path (StreamPlayer: a producer thread, the sound card's
  callback copying from the ring) for --stream-seconds to a JACK server's dummy device
  (started here, named: no running JACK session is touched), underruns counted;
- baseline: the same LM and codec in PyTorch eager, recomputing the whole window every step
  (no KV cache), the plain way, for --baseline-seconds (it is slow), from the run's
  checkpoint when there is one (--checkpoint).

    python benchmarks/audio_rtf.py [--bundle models/codec-lm] [--stream-seconds 60]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

from cadenza.realtime.audio_play import load_codec_lm, play, prime

PROMPT = "a church organ playing a slow Bach chorale"


def offline(bundle: str | None, seconds: float) -> tuple[float, float]:
    lm = load_codec_lm(bundle, seed=0)
    prime(lm, PROMPT, None)
    started = time.perf_counter()
    lm.generate_audio(seconds)
    wall = time.perf_counter() - started
    return seconds, wall


def streaming(bundle: str | None, seconds: float) -> tuple[float, float, int]:
    from cadenza.realtime.audio_out import release_audio_devices, rescan_audio_devices
    from cadenza.realtime.jack import start_dummy_jack, stop_jack

    name = f"cadenza-bench-{os.getpid()}"
    server = start_dummy_jack(name)
    os.environ["JACK_DEFAULT_SERVER"] = name
    try:
        rescan_audio_devices()
        lm = load_codec_lm(bundle, seed=0)
        prime(lm, PROMPT, None)
        run = play(lm, seconds, device="JACK", status=False)
        release_audio_devices()
    finally:
        stop_jack(server)
    return run.seconds, run.wall, run.underruns


def eager_baseline(checkpoint: Path, seconds: float) -> tuple[float, float]:
    """PyTorch eager, no cache: each step runs the whole window (condition + steps so far,
    at most the trained context) for the text and the null text, then decodes at the end."""
    import torch

    from cadenza.plugins.codebook_patterns import get_pattern
    from cadenza.plugins.text_encoder import find_text_encoder
    from cadenza.training.codec_lm_train import model_from_checkpoint
    from cadenza.training.codec_train import codec_from_checkpoint
    from cadenza.training.loop import load_checkpoint

    torch.set_num_threads(1)
    state = load_checkpoint(checkpoint)
    model = model_from_checkpoint(state)
    codec = codec_from_checkpoint(load_checkpoint(state["config"]["codec"]))
    c = model.config
    pattern = get_pattern(c.pattern, c.num_codebooks)
    window = pattern.length(int(state.get("clip_frames", 200)))
    text = torch.from_numpy(find_text_encoder().embed([PROMPT]))
    texts = torch.cat([text, torch.zeros_like(text)])
    frames = round(seconds * codec.config.frame_rate)
    steps = pattern.length(frames)
    seq = torch.full((2, c.num_codebooks, steps + 1), c.special, dtype=torch.int64)
    started = time.perf_counter()
    with torch.no_grad():
        for s in range(steps):
            begin = max(0, s + 1 - window)
            logits, _ = model(seq[:, :, begin : s + 1], texts)
            last = logits[:, :, -1]
            guided = last[1] + 3.0 * (last[0] - last[1])
            top = torch.topk(guided, min(250, c.codebook_size), dim=-1)
            probs = torch.softmax(top.values, dim=-1)
            tokens = top.indices.gather(1, torch.multinomial(probs, 1)).squeeze(1)
            placed = torch.from_numpy(pattern.placed(s))
            seq[:, :, s] = torch.where(placed, tokens, c.special)
        codes = torch.from_numpy(pattern.revert(seq[0, :, :steps].numpy()))
        codec.decode(codes[None])
    return frames / codec.config.frame_rate, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", help="codec-lm bundle (default: the shipped one)")
    parser.add_argument("--checkpoint", default="runs/codec-lm/best.pt",
                        help="the LM checkpoint for the PyTorch baseline")
    parser.add_argument("--offline-seconds", type=float, default=20.0)
    parser.add_argument("--stream-seconds", type=float, default=60.0)
    parser.add_argument("--baseline-seconds", type=float, default=5.0)
    args = parser.parse_args()

    rows = []
    seconds, wall = offline(args.bundle, args.offline_seconds)
    rows.append(("onnxruntime, KV cache, offline", seconds, wall, "-"))
    seconds, wall, underruns = streaming(args.bundle, args.stream_seconds)
    rows.append(("onnxruntime, KV cache, streaming to JACK", seconds, wall, str(underruns)))
    if Path(args.checkpoint).is_file():
        seconds, wall = eager_baseline(Path(args.checkpoint), args.baseline_seconds)
        rows.append(("PyTorch eager, no cache (baseline)", seconds, wall, "-"))
    else:
        print(f"(no {args.checkpoint}: the PyTorch baseline is skipped)")
    print("| codec-lm, 1 thread, CFG 3 | audio s | wall s | real-time factor | underruns |")
    print("|---|---|---|---|---|")
    for name, seconds, wall, underruns in rows:
        # Streaming is paced by the card: its wall time is the audio's; its figure is the
        # underrun count (the offline row says how far ahead of real time it can run).
        factor = "paced" if "streaming" in name else f"{seconds / wall:.2f}"
        print(f"| {name} | {seconds:.1f} | {wall:.1f} | {factor} | {underruns} |")
    print(f"(numpy {np.__version__}; one core of this machine)")


if __name__ == "__main__":
    main()
