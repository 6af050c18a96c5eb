"""--resume: an unreadable last.pt falls back to the previous checkpoint and says so; a
changed model config is one line naming the field, before any state dict is loaded."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from cadenza.errors import CadenzaError
from cadenza.training.runner import BEST, LAST, LAST_PREV, TrainingRun


def _run(tmp_path, resume=True):
    settings = SimpleNamespace(
        out=str(tmp_path), device="cpu", seed=0, threads=0,
        lr=1e-3, min_lr=1e-4, warmup_steps=1, max_steps=10,
    )
    return TrainingRun(settings, resume=resume, progress=False, distributed=False)


def _checkpoint(step, hidden=4):
    model = torch.nn.Linear(hidden, 2)
    return {"config": {"model": {"hidden_size": hidden}}, "model": model.state_dict(),
            "step": step}


def test_save_keeps_previous_last(tmp_path):
    run = _run(tmp_path, resume=False)
    run.save(_checkpoint(1), improved=True)
    run.save(_checkpoint(2), improved=False)
    assert torch.load(tmp_path / LAST, weights_only=True)["step"] == 2
    assert torch.load(tmp_path / LAST_PREV, weights_only=True)["step"] == 1
    assert torch.load(tmp_path / BEST, weights_only=True)["step"] == 1
    assert not [p for p in tmp_path.iterdir() if ".tmp" in p.name]


def test_truncated_last_falls_back_and_says_so(tmp_path, capsys):
    run = _run(tmp_path)
    run.save(_checkpoint(1), improved=False)
    run.save(_checkpoint(2), improved=False)
    data = (tmp_path / LAST).read_bytes()
    (tmp_path / LAST).write_bytes(data[: len(data) // 2])  # a kill mid-write, before 0.x
    checkpoint = run.last_checkpoint()
    assert checkpoint["step"] == 1
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and str(tmp_path / LAST) in out[0] and LAST_PREV in out[0]


def test_falls_back_to_best(tmp_path, capsys):
    run = _run(tmp_path)
    torch.save(_checkpoint(3), tmp_path / BEST)
    (tmp_path / LAST).write_bytes(b"\x00garbage")
    assert run.last_checkpoint()["step"] == 3
    assert BEST in capsys.readouterr().out


def test_nothing_readable_is_one_line_naming_the_file(tmp_path):
    run = _run(tmp_path)
    (tmp_path / LAST).write_bytes(b"truncated")
    with pytest.raises(CadenzaError) as e:
        run.last_checkpoint()
    assert str(tmp_path / LAST) in str(e.value) and "\n" not in str(e.value)


def test_changed_model_config_names_the_field(tmp_path):
    run = _run(tmp_path)
    run.save(_checkpoint(1, hidden=256), improved=False)
    model = torch.nn.Linear(512, 2)
    with pytest.raises(CadenzaError) as e:
        run.last_checkpoint({"hidden_size": 512}, model.state_dict())
    assert str(e.value) == (
        "model.hidden_size: the checkpoint has 256, the config 512; "
        "start a new --out or drop --resume"
    )


def test_changed_field_that_shapes_nothing_is_allowed(tmp_path):
    run = _run(tmp_path)
    saved = _checkpoint(1)
    saved["config"]["model"]["dropout"] = 0.1
    run.save(saved, improved=False)
    model = torch.nn.Linear(4, 2)
    assert run.last_checkpoint({"hidden_size": 4, "dropout": 0.2}, model.state_dict())
