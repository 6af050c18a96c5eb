"""Train the codec on the rendered audio corpus (`cadenza corpus render`).

    python -m cadenza.training.codec_train --data data/audio/<corpus> --out runs/codec \
        [--config codec.yaml] [--set model.channels=16 --set batch_size=8] [--resume]

Random crops of the training clips; the loss is the multi-scale mel loss plus the
multi-resolution STFT loss, an L1 on the samples and the quantiser's commitment loss (the
codebooks themselves learn by EMA, see codec.py). Every `eval_every` steps the whole valid
clips are encoded and decoded: log-mel L1 distance, SI-SDR and the share of each codebook
in use, beside the band-limited mu-law baseline at the same bit rate, to metrics.jsonl.
`last.pt` and `best.pt` (lowest valid mel distance) hold only tensors and plain values:
`torch.load(weights_only=True)` reads them.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from cadenza.corpus.audio import load_clips
from cadenza.errors import CadenzaError, ConfigError
from cadenza.training.codec import ARCHITECTURES, Codec, CodecConfig
from cadenza.training.codec_baseline import baseline
from cadenza.training.codec_losses import (
    MultiResolutionSTFTLoss,
    MultiScaleMelLoss,
    bits_per_second,
    mel_distance,
    si_sdr,
)
from cadenza.training.runner import TrainingRun, load_checkpoint, save_checkpoint, write_json
from cadenza.training.settings import fill_settings

KIND = "codec"


@dataclass
class CodecTrainConfig:
    data: str = "data/audio/music21-bach+music21-palestrina+music21-folk"
    out: str = "runs/codec"
    model: CodecConfig = field(default_factory=CodecConfig)
    crop_seconds: float = 1.0
    batch_size: int = 16
    lr: float = 3e-4
    min_lr: float = 3e-4  # cosine decay to this at max_steps (= lr: constant)
    warmup_steps: int = 0
    max_steps: int = 20000
    eval_every: int = 500
    eval_clips: int = 64  # valid clips encoded and decoded at each validation
    mel_weight: float = 1.0
    stft_weight: float = 1.0
    l1_weight: float = 0.1
    grad_clip: float = 1.0
    seed: int = 1234
    device: str = "cpu"
    threads: int = 0  # torch intra-op threads on CPU; 0 leaves torch's default


def load_codec_config(path: str | Path | None, overrides: list[str] | None) -> CodecTrainConfig:
    """Defaults, then the YAML file, then each `key=value` (`model.channels=16`)."""
    config = fill_settings(CodecTrainConfig(), path, overrides)
    if config.batch_size < 1 or config.crop_seconds <= 0:
        raise ConfigError("batch_size/crop_seconds", "must be positive")
    if config.model.architecture not in ARCHITECTURES:
        raise ConfigError("model.architecture", f"{config.model.architecture!r} is not one of "
                          f"{', '.join(ARCHITECTURES)}")
    return config


class Crops:
    """Random fixed-length crops of the int16 clips, as float32 (batch, 1, samples)."""

    def __init__(self, audio: np.ndarray, samples: int, seed: int):
        if len(audio) == 0:
            raise CadenzaError("codec training: the audio corpus has no training clips")
        if samples > audio.shape[1]:
            raise ConfigError("crop_seconds", f"longer than the corpus' clips ({audio.shape[1]})")
        self.audio, self.samples = audio, samples
        self.rng = np.random.default_rng(seed)

    def batch(self, size: int) -> torch.Tensor:
        rows = self.rng.integers(len(self.audio), size=size)
        starts = self.rng.integers(self.audio.shape[1] - self.samples + 1, size=size)
        crops = np.stack(
            [self.audio[r, s : s + self.samples] for r, s in zip(rows, starts, strict=True)]
        )
        return torch.from_numpy(crops.astype(np.float32) / 32767).unsqueeze(1)


@torch.no_grad()
def validate(codec: Codec, audio: np.ndarray, config: CodecTrainConfig, device) -> dict:
    """The held-out figures on the first `eval_clips` valid clips, and the baseline's."""
    codec.eval()
    clips = torch.from_numpy(audio[: config.eval_clips].astype(np.float32) / 32767).unsqueeze(1)
    outputs, used = [], [set() for _ in range(config.model.num_codebooks)]
    for i in range(0, len(clips), 8):
        codes = codec.encode(clips[i : i + 8].to(device))
        outputs.append(codec.decode(codes)[..., : clips.shape[-1]].cpu())
        for k in range(codes.shape[1]):
            used[k].update(codes[:, k].unique().tolist())
    output = torch.cat(outputs)
    rate = config.model.sample_rate
    bps = bits_per_second(
        config.model.num_codebooks, config.model.codebook_size, config.model.frame_rate
    )
    coded, _ = baseline(clips.numpy(), rate, bps)
    codec.train()
    return {
        "mel_distance": mel_distance(output, clips, rate),
        "si_sdr": float(si_sdr(output, clips).mean()),
        "codes_used": [len(u) / config.model.codebook_size for u in used],
        "bits_per_second": bps,
        "baseline_mel_distance": mel_distance(torch.from_numpy(coded), clips, rate),
        "baseline_si_sdr": float(si_sdr(torch.from_numpy(coded), clips).mean()),
    }


def _checkpoint(codec, optimizer, step: int, best: float, config: CodecTrainConfig) -> dict:
    return {
        "kind": KIND,
        "model": codec.state_dict(),
        "optimizer": optimizer.state_dict(),
        "step": step,
        "best_mel_distance": best,
        "config": dataclasses.asdict(config),
    }


def codec_from_checkpoint(checkpoint: dict) -> Codec:
    model = dict(checkpoint["config"]["model"])
    model = {k: tuple(v) if isinstance(v, list) else v for k, v in model.items()}
    codec = Codec(CodecConfig(**model))
    codec.load_state_dict(checkpoint["model"])
    return codec.eval()


def train(config: CodecTrainConfig, *, resume: bool = False, progress: bool = True) -> dict:
    """Train to `max_steps`; returns the last validation's figures."""
    # One process: the codebooks all-reduce under DDP, but this loop has never sharded data.
    run = TrainingRun(config, resume=resume, progress=progress, distributed=False)
    device = run.device
    train_audio, _, rate = load_clips(config.data, "train")
    valid_audio, _, _ = load_clips(config.data, "valid")
    if rate != config.model.sample_rate:
        raise ConfigError("model.sample_rate", f"{config.model.sample_rate}, the corpus is {rate}")
    crops = Crops(train_audio, round(config.crop_seconds * rate), config.seed)
    codec = Codec(config.model).to(device).train()
    optimizer = torch.optim.AdamW(codec.parameters(), lr=config.lr, betas=(0.5, 0.9))
    mel_loss, stft_loss = MultiScaleMelLoss(rate).to(device), MultiResolutionSTFTLoss()
    step, best = 0, float("inf")
    resumed = run.last_checkpoint(dataclasses.asdict(config)["model"], codec.state_dict())
    if (state := resumed) is not None:
        codec.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        step = int(state["step"])
        # The best so far counts only where its checkpoint is (a last.pt moved on its own
        # starts its best.pt afresh).
        if (run.out / "best.pt").is_file():
            best = float(state["best_mel_distance"])
    figures: dict = {}
    bar = run.progress_bar("codec", step)
    # The codec's log has always grown across runs into one folder, resumed or not.
    log = run.open_metrics(append=True)
    started = time.perf_counter()
    while step < config.max_steps:
        audio = crops.batch(config.batch_size).to(device)
        output, _, commitment = codec(audio)
        loss = (
            config.mel_weight * mel_loss(output, audio)
            + config.stft_weight * stft_loss(output, audio)
            + config.l1_weight * torch.nn.functional.l1_loss(output, audio)
            + commitment
        )
        run.set_learning_rate(optimizer, step)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(codec.parameters(), config.grad_clip)
        optimizer.step()
        step += 1
        bar.update()
        bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
        if step % config.eval_every == 0 or step == config.max_steps:
            figures = {
                "step": step,
                "loss": loss.item(),
                **validate(codec, valid_audio, config, device),
            }
            figures["seconds"] = round(time.perf_counter() - started, 1)
            log.write(figures)
            improved = figures["mel_distance"] < best
            best = min(best, figures["mel_distance"])
            run.save(_checkpoint(codec, optimizer, step, best, config), improved=improved)
    bar.close()
    run.close()
    return finish(run.out, config)


def finish(out: Path, config: CodecTrainConfig) -> dict:
    """The best checkpoint's figures on every test clip, beside the baseline's at the same
    bit rate, written into it (the codec-lm export copies them) and to figures.json."""
    path = out / "best.pt"
    checkpoint = load_checkpoint(path)
    codec = codec_from_checkpoint(checkpoint)
    test_audio, _, _ = load_clips(config.data, "test")
    test = validate(codec, test_audio, dataclasses.replace(config, eval_clips=len(test_audio)),
                    torch.device("cpu"))
    test = {k: [round(x, 4) for x in v] if isinstance(v, list) else round(v, 4)
            for k, v in test.items()}
    test["clips"] = len(test_audio)
    checkpoint["test"] = test
    save_checkpoint(checkpoint, path)
    figures = {"step": int(checkpoint["step"]), "test": test}
    write_json(out / "figures.json", figures)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cadenza.training.codec_train")
    parser.add_argument("--config", help="YAML file of settings")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--data", help="a folder written by `cadenza corpus render`")
    parser.add_argument("--out", help="checkpoints and metrics.jsonl (default runs/codec)")
    parser.add_argument("--resume", action="store_true", help="go on from out/last.pt")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    overrides = list(args.set)
    overrides += [f"{k}={v}" for k, v in (("data", args.data), ("out", args.out)) if v]
    try:
        figures = train(
            load_codec_config(args.config, overrides),
            resume=args.resume,
            progress=not args.no_progress,
        )
    except CadenzaError as e:
        print(f"cadenza: error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
