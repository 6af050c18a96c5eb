"""Train the codec LM on the rendered audio corpus, encoded by a trained codec.

    cadenza train codec-lm [--config configs/codec-lm.yaml] [--set model.d_model=256]

First (once, cached in OUT/data.npz) every clip is encoded to codes by the codec checkpoint
and its caption to sentence embeddings: the caption itself and `text_variants` copies with
words dropped (each word with probability `word_dropout`, MusicGen's word dropout), so that a
prompt of a few words ("solo flute") lands where training captions were. Then batches of
whole clips in the codebook pattern, the text replaced by the null (zero) embedding with
probability `condition_dropout` so that one network is both the conditional and the
unconditional model of classifier-free guidance. The weights' exponential moving average
is what is validated, kept in best.pt and exported. Held-out figures: cross-entropy per
codebook (nats) on the valid (test at the end) clips, with the text and with the null one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from cadenza.atomic import atomic_path
from cadenza.corpus.audio import load_clips
from cadenza.errors import CadenzaError, ConfigError
from cadenza.plugins.codebook_patterns import get_pattern
from cadenza.plugins.text_encoder import TextEncoder, find_text_encoder
from cadenza.training.codec_lm import CodecLM, CodecLMConfig, pattern_loss
from cadenza.training.codec_train import codec_from_checkpoint
from cadenza.training.runner import TrainingRun, load_checkpoint, save_checkpoint, write_json
from cadenza.training.settings import fill_settings, require_at_least_one

KIND = "codec-lm"
SPLITS = ("train", "valid", "test")


@dataclass
class CodecLMTrainConfig:
    kind: str = KIND
    data: str = "data/audio/music21-bach+music21-palestrina+music21-folk"
    codec: str = "runs/codec/best.pt"  # the trained codec whose codes the LM learns
    out: str = "runs/codec-lm"
    model: CodecLMConfig = field(default_factory=CodecLMConfig)
    text_variants: int = 4  # word-dropped captions per clip, beside the caption itself
    word_dropout: float = 0.3
    condition_dropout: float = 0.2  # share of training clips given the null text (for CFG)
    batch_size: int = 32
    micro_batches: int = 1  # gradient accumulation: the batch in this many parts
    lr: float = 1e-3
    min_lr: float = 1e-4
    warmup_steps: int = 100
    max_steps: int = 1500
    weight_decay: float = 0.05
    grad_clip: float = 1.0
    ema_decay: float = 0.99
    eval_every: int = 250
    seed: int = 1234
    device: str = "cpu"
    threads: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def load_codec_lm_config(
    path: str | Path | None, overrides: list[str] | None
) -> CodecLMTrainConfig:
    config = fill_settings(CodecLMTrainConfig(), path, overrides, kind=KIND)
    require_at_least_one(config, "batch_size", "max_steps", "micro_batches", "eval_every")
    if config.batch_size % config.micro_batches:
        raise ConfigError("micro_batches", "must divide batch_size")
    get_pattern(config.model.pattern, config.model.num_codebooks)  # a bad name: one line
    return config


# -------- the dataset: codes and caption embeddings, built once --------------------------------
def drop_words(caption: str, p: float, rng: np.random.Generator) -> str:
    """The caption with each word dropped with probability p (at least one word kept)."""
    words = caption.split()
    kept = [w for w in words if rng.random() >= p]
    return " ".join(kept) if kept else str(rng.choice(words)) if words else caption


@torch.no_grad()
def encode_clips(codec, audio: np.ndarray, batch: int = 16) -> np.ndarray:
    """int16 clips (n, samples) -> codes (n, K, frames) int16."""
    out = []
    for i in range(0, len(audio), batch):
        x = torch.from_numpy(np.asarray(audio[i : i + batch], dtype=np.float32) / 32767)
        out.append(codec.encode(x.unsqueeze(1)).numpy().astype(np.int16))
    return np.concatenate(out) if out else np.zeros((0, codec.config.num_codebooks, 0), np.int16)


def build_dataset(config: CodecLMTrainConfig, path: Path, text_encoder: TextEncoder) -> None:
    """Write `path` (.npz): per split the codes, the text embeddings (clips, 1 + variants,
    384) and the clips' instruments; `text_encoder` is a plugins.text_encoder.TextEncoder."""
    codec = codec_from_checkpoint(load_checkpoint(config.codec))
    if codec.config.num_codebooks != config.model.num_codebooks or (
        codec.config.codebook_size != config.model.codebook_size
    ):
        raise ConfigError(
            "model.num_codebooks/codebook_size",
            f"the codec {config.codec} has {codec.config.num_codebooks} x "
            f"{codec.config.codebook_size}",
        )
    rng = np.random.default_rng(config.seed)
    arrays: dict[str, np.ndarray] = {"codec": np.array(codec_fingerprint(config.codec))}
    for split in SPLITS:
        audio, clips, _ = load_clips(config.data, split)
        arrays[f"{split}_codes"] = encode_clips(codec, audio)
        variants = range(config.text_variants)
        captions = [
            [c["caption"]] + [drop_words(c["caption"], config.word_dropout, rng) for _ in variants]
            for c in clips
        ]
        flat = [text for row in captions for text in row]
        unique = sorted(set(flat))
        table = {t: e for t, e in zip(unique, _embed_all(text_encoder, unique), strict=True)}
        arrays[f"{split}_text"] = np.stack([[table[t] for t in row] for row in captions])
        arrays[f"{split}_instrument"] = np.array([c.get("instrument", "") for c in clips])
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:  # keeps the .npz suffix: np.savez adds none
        np.savez(tmp, **arrays)


def codec_fingerprint(path: str | Path) -> str:
    """What identifies the codec the codes came from: its checkpoint's bytes."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def dataset_is_current(path: Path, config: CodecLMTrainConfig) -> bool:
    """Whether `path` holds the codes of `config.codec` as it is now (a retrained codec's
    codes mean other sounds: the LM must not learn the old ones)."""
    if not path.is_file():
        return False
    with np.load(path, allow_pickle=False) as arrays:
        built_from = str(arrays["codec"]) if "codec" in arrays.files else None
    return built_from == codec_fingerprint(config.codec)


def _embed_all(text_encoder, texts: list[str], batch: int = 64) -> np.ndarray:
    parts = [text_encoder.embed(texts[i : i + batch]) for i in range(0, len(texts), batch)]
    return np.concatenate(parts)


class PatternClips:
    """One split's clips as pattern sequences (n, K, S) with masks, and their texts."""

    def __init__(self, arrays, split: str, config: CodecLMConfig):
        codes = arrays[f"{split}_codes"].astype(np.int64)
        if len(codes) == 0:
            raise CadenzaError(f"codec-lm training: the {split} split has no clips")
        pattern = get_pattern(config.pattern, config.num_codebooks)
        self.seq = torch.from_numpy(np.stack([pattern.build(c, config.special) for c in codes]))
        self.mask = torch.from_numpy(pattern.mask(codes.shape[2])).expand_as(self.seq)
        self.text = torch.from_numpy(arrays[f"{split}_text"].astype(np.float32))

    def __len__(self) -> int:
        return len(self.seq)


def training_batch(clips: PatternClips, size: int, config: CodecLMTrainConfig, g: torch.Generator):
    rows = torch.randint(len(clips), (size,), generator=g)
    variants = torch.randint(clips.text.shape[1], (size,), generator=g)
    text = clips.text[rows, variants]
    dropped = torch.rand(size, generator=g) < config.condition_dropout
    text[dropped] = 0.0  # the null condition
    return clips.seq[rows], clips.mask[rows], text


@torch.no_grad()
def held_out_loss(model: torch.nn.Module, clips: PatternClips, device, batch: int = 32,
                  texts: torch.Tensor | None = None) -> dict:
    """Cross-entropy per codebook (nats) with each clip's own caption (or `texts`, one per
    clip) and with the null text."""
    texts = clips.text[:, 0] if texts is None else texts
    model.eval()
    figures = {}
    for name, use_text in (("text", True), ("no_text", False)):
        total, count = None, 0
        for i in range(0, len(clips), batch):
            seq, mask = clips.seq[i : i + batch].to(device), clips.mask[i : i + batch].to(device)
            text = texts[i : i + batch].to(device)
            logits, _ = model(seq, text if use_text else torch.zeros_like(text))
            loss = pattern_loss(logits.float(), seq, mask) * len(seq)
            total = loss if total is None else total + loss
            count += len(seq)
        figures[name] = [round(float(x), 4) for x in (total / count)]
        figures[f"{name}_mean"] = round(float((total / count).mean()), 4)
    model.train()
    return figures


@torch.no_grad()
def other_instrument_loss(model, clips: PatternClips, instruments: np.ndarray, device,
                          batch: int = 32) -> list[float]:
    """Cross-entropy per codebook when each clip is given the caption of a clip played by
    another instrument: above the own caption's, the text tells the LM the instrument."""
    order = np.argsort(instruments, kind="stable")
    swapped = np.empty_like(order)
    swapped[order] = np.roll(order, len(order) // 2)  # half the corpus away: another instrument
    texts = clips.text[torch.from_numpy(swapped), 0]
    return held_out_loss(model, clips, device, batch, texts)["text"]


# -------- the loop -----------------------------------------------------------------------------
def dataset_path(config: CodecLMTrainConfig) -> Path:
    return Path(config.out) / "data.npz"


def train(
    config: CodecLMTrainConfig,
    *,
    resume: bool = False,
    progress: bool = True,
    text_encoder: TextEncoder | None = None,
) -> dict:
    """Train to `max_steps`; returns the best checkpoint's held-out (test) figures.
    `text_encoder` (a TextEncoder) is needed only when the dataset is not built yet."""
    run = TrainingRun(config, resume=resume, progress=progress, seed_per_rank=True)
    device = run.device
    data = dataset_path(config)
    if run.is_main and not dataset_is_current(data, config):
        if text_encoder is None:
            text_encoder = find_text_encoder()  # the shipped one, as `cadenza audio` plays
        build_dataset(config, data, text_encoder)
    run.barrier()
    arrays = np.load(data, allow_pickle=False)
    train_clips = PatternClips(arrays, "train", config.model)
    valid_clips = PatternClips(arrays, "valid", config.model)

    model = CodecLM(config.model).to(device)
    ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(config.ema_decay))
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    g = torch.Generator().manual_seed(config.seed + run.rank)
    step, best = 0, math.inf
    resumed = run.last_checkpoint(
        config.to_dict()["model"], model.state_dict(), state_key="raw_model"
    )
    if (checkpoint := resumed) is not None:
        model.load_state_dict(checkpoint["raw_model"])
        ema.module.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        step, best = int(checkpoint["step"]), float(checkpoint["best_valid"])
        g.manual_seed(config.seed + run.rank + step)
    wrapped = run.wrap(model)
    log = run.open_metrics()
    bar = run.progress_bar("train codec-lm", step)
    started, avg = time.perf_counter(), None
    part = config.batch_size // config.micro_batches
    while step < config.max_steps:
        run.set_learning_rate(optimizer, step)
        optimizer.zero_grad(set_to_none=True)
        total = 0.0
        for _ in range(config.micro_batches):
            seq, mask, text = (t.to(device) for t in training_batch(train_clips, part, config, g))
            with run.autocast:
                logits, _ = wrapped(seq, text)
            loss = pattern_loss(logits.float(), seq, mask).mean() / config.micro_batches
            loss.backward()
            total += float(loss.detach())
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        ema.update_parameters(model)
        step += 1
        avg = total if avg is None else 0.98 * avg + 0.02 * total
        bar.update(1)
        bar.set_postfix(loss=f"{avg:.3f}")
        if run.is_main and (step % config.eval_every == 0 or step == config.max_steps):
            figures = held_out_loss(ema.module, valid_clips, device)
            log.write(
                {
                    "step": step,
                    "train_loss": round(avg, 4),
                    **{f"valid_{k}": v for k, v in figures.items()},
                    "seconds": round(time.perf_counter() - started, 1),
                }
            )
            improved = figures["text_mean"] < best
            best = min(best, figures["text_mean"])
            checkpoint = {
                "kind": KIND,
                "config": config.to_dict(),
                "model": ema.module.state_dict(),
                "raw_model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "step": step,
                "clip_frames": int(arrays["train_codes"].shape[2]),
                "best_valid": best,
                "valid": figures,
            }
            run.save(checkpoint, improved=improved)
            bar.write(
                f"step {step}: valid CE {figures['text_mean']:.3f} with text, "
                f"{figures['no_text_mean']:.3f} without (nats/code)"
            )
        if step % config.eval_every == 0:
            run.barrier()
    bar.close()
    result: dict = finish(run.out, device) if run.is_main else {}
    run.close()
    return result


def model_from_checkpoint(checkpoint: dict) -> CodecLM:
    model = CodecLM(CodecLMConfig(**checkpoint["config"]["model"]))
    model.load_state_dict(checkpoint["model"])
    return model.eval()


def finish(out: Path, device) -> dict:
    """The best checkpoint's test figures, written into it (the export copies them)."""
    checkpoint = load_checkpoint(out / "best.pt")
    config = checkpoint["config"]
    arrays = np.load(out / "data.npz", allow_pickle=False)
    model = model_from_checkpoint(checkpoint).to(device)
    clips = PatternClips(arrays, "test", model.config)
    test = held_out_loss(model, clips, device)
    instruments = arrays["test_instrument"]
    test["other_instrument"] = other_instrument_loss(model, clips, instruments, device)
    checkpoint["test"] = test
    save_checkpoint(checkpoint, out / "best.pt")
    figures = {
        "step": checkpoint["step"],
        "valid": checkpoint["valid"],
        "test": test,
        "codec": config["codec"],
    }
    write_json(out / "figures.json", figures)
    print(
        f"best step {figures['step']}: test CE per codebook {test['text']} with text, "
        f"{test['no_text']} without"
    )
    return figures
