"""The atomic-write helper: a writer cut short leaves the previous file whole."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from cadenza.atomic import atomic_open, atomic_path, atomic_write, atomic_write_text
from cadenza.bundle import write_bundle


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if ".tmp" in p.name)


def test_atomic_write_replaces_whole(tmp_path):
    path = tmp_path / "a.bin"
    atomic_write(path, b"old")
    atomic_write(path, b"new" * 1000)
    assert path.read_bytes() == b"new" * 1000
    atomic_write_text(tmp_path / "b.txt", "héllo")
    assert (tmp_path / "b.txt").read_text(encoding="utf-8") == "héllo"
    assert leftovers(tmp_path) == []


def test_writer_raising_midway_keeps_previous(tmp_path):
    path = tmp_path / "c.bin"
    atomic_write(path, b"previous")
    with pytest.raises(RuntimeError), atomic_open(path, "wb") as f:
        f.write(b"half")
        raise RuntimeError("disk full")
    assert path.read_bytes() == b"previous"
    assert leftovers(tmp_path) == []


def test_replace_failing_keeps_previous(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    torch.save({"step": 1}, path)

    def refuse(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(OSError), atomic_path(path) as tmp:
        torch.save({"step": 2, "w": torch.zeros(1000)}, tmp)
    assert torch.load(path, weights_only=True) == {"step": 1}
    assert leftovers(tmp_path) == []


def test_streaming_writers_keep_their_suffix(tmp_path):
    with atomic_path(tmp_path / "x.npy") as tmp:
        np.save(tmp, np.arange(3))  # np.save adds .npy to a name without it
    with atomic_path(tmp_path / "y.npz") as tmp:
        np.savez(tmp, a=np.arange(2))
    assert np.load(tmp_path / "x.npy").tolist() == [0, 1, 2]
    assert np.load(tmp_path / "y.npz")["a"].tolist() == [0, 1]
    assert leftovers(tmp_path) == []


def test_killed_writer_leaves_previous_file(tmp_path):
    """A process SIGKILLed in the middle of a large write: the old file is whole."""
    path = tmp_path / "big.bin"
    atomic_write(path, b"previous")
    script = textwrap.dedent(
        f"""
        import os, signal
        from cadenza.atomic import atomic_open
        with atomic_open({str(path)!r}, "wb") as f:
            f.write(b"x" * (1 << 20))
            f.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], timeout=60)
    assert proc.returncode == -9
    assert path.read_bytes() == b"previous"


def test_bundle_cut_short_has_no_manifest(tmp_path, monkeypatch):
    """write_bundle writes the manifest last and removes an old one first: a bundle whose
    graphs were being rewritten when it failed is refused as having no manifest."""
    import cadenza.atomic as atomic

    out = tmp_path / "bundle"
    out.mkdir()
    (out / "manifest.yaml").write_text("old: true\n")
    calls = []
    real = atomic.atomic_write

    def failing(path, data):
        calls.append(path)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic, "atomic_write", failing)
    with pytest.raises(OSError):
        write_bundle(out, {"graphs": {"step": "step.onnx"}}, {"step": b"graph"})
    assert calls and not (out / "manifest.yaml").exists()
    assert real is not failing
