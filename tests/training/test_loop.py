"""Training on a real (tiny) corpus: it learns, checkpoints load with weights_only, resume
continues where it stopped, and two processes under torchrun train one model."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import torch

from cadenza.training.loop import load_checkpoint, train
from tests.helpers import TINY_MODEL, tiny_config


def test_validation_loss_falls_and_checkpoints_are_weights_only(tiny_run):
    lines = [json.loads(x) for x in (tiny_run / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in lines] == [20, 40]
    assert lines[-1]["valid_nll"] < 5.9  # uniform over 388 classes is 5.96 nats
    checkpoint = torch.load(tiny_run / "best.pt", weights_only=True)
    assert checkpoint["kind"] == "performance-rnn"
    assert checkpoint["metrics"]["test_nll"] > 0


def test_resume_continues_from_the_last_checkpoint(tiny_corpus, tmp_path):
    train(tiny_config(tiny_corpus, tmp_path, "max_steps=20"), progress=False)
    assert load_checkpoint(tmp_path / "last.pt")["step"] == 20
    train(tiny_config(tiny_corpus, tmp_path, "max_steps=40"), resume=True, progress=False)
    steps = [json.loads(x)["step"] for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert steps == [20, 40]  # resumed at 20, did not start again from 0
    assert load_checkpoint(tmp_path / "last.pt")["step"] == 40


def test_two_processes_with_torchrun(tiny_corpus, tmp_path):
    torchrun = os.path.join(os.path.dirname(sys.executable), "torchrun")
    overrides = [f"--set={s}" for s in [*TINY_MODEL, "max_steps=10", "eval_every=10"]]
    result = subprocess.run(
        [
            torchrun,
            "--nproc_per_node=2",
            "--master_port=29517",
            "-m",
            "cadenza.cli",
            "train",
            "performance-rnn",
            "--data",
            str(tiny_corpus),
            "--out",
            str(tmp_path),
            "--no-progress",
            *overrides,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    checkpoint = load_checkpoint(tmp_path / "best.pt")
    assert checkpoint["step"] == 10
    assert len(checkpoint["sampler"]) == 2  # each rank's window sampler, for --resume
