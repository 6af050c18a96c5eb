"""The run every trainer shares (cadenza.training.runner) and the settings loader."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pytest
import torch

from cadenza.errors import ConfigError
from cadenza.training.runner import TrainingRun, learning_rate
from cadenza.training.settings import apply_overrides


@dataclass
class Settings:
    out: str
    lr: float = 1e-3
    min_lr: float = 1e-4
    warmup_steps: int = 10
    max_steps: int = 110
    seed: int = 0
    device: str = "cpu"
    threads: int = 0


def test_the_schedule_warms_up_then_decays_to_min_lr(tmp_path):
    s = Settings(str(tmp_path))
    assert learning_rate(s, 0) == pytest.approx(1e-4)
    assert learning_rate(s, 9) == pytest.approx(1e-3)
    assert learning_rate(s, 60) == pytest.approx((1e-3 + 1e-4) / 2)
    assert learning_rate(s, 110) == pytest.approx(1e-4)


def test_a_run_saves_last_and_best_and_resumes_from_last(tmp_path, capsys):
    out = tmp_path / "run"
    run = TrainingRun(Settings(str(out)), resume=True, progress=False)
    assert run.last_checkpoint() is None  # nothing there yet: said once, starts afresh
    assert "starting afresh" in capsys.readouterr().out
    log = run.open_metrics()
    log.write({"step": 1})
    run.save({"step": 1, "model": {"w": torch.ones(2)}}, improved=True)
    run.save({"step": 2, "model": {"w": torch.zeros(2)}}, improved=False)
    run.close()
    assert torch.load(out / "best.pt", weights_only=True)["step"] == 1
    resumed = TrainingRun(Settings(str(out)), resume=True, progress=False)
    assert resumed.last_checkpoint()["step"] == 2
    resumed.open_metrics().write({"step": 3})  # resuming continues the log
    resumed.close()
    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [1, 3]


@dataclass(frozen=True)
class Inner:
    sizes: tuple[int, ...] = (1, 2)
    rate: float = 0.5


@dataclass
class Outer:
    inner: Inner = field(default_factory=Inner)
    names: list[str] = field(default_factory=list)


def test_overrides_reach_a_frozen_nested_dataclass_and_tuples():
    config = Outer()
    apply_overrides(config, ["inner.sizes=4,8,16", "inner.rate=1", "names=a,b"])
    assert config.inner == Inner((4, 8, 16), 1.0) and config.names == ["a", "b"]
    with pytest.raises(ConfigError, match="inner.sizes"):
        apply_overrides(config, ["inner.sizes=4,x"])
