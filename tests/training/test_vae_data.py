"""The VAE grid cache (cadenza.training.vae_data.build_cache): a worker process that dies ends
the run with one line naming the piece, as the token corpus does (tests/corpus/test_workers.py).

The death is real and no hook in Cadenza's code is needed: once the spawned workers exist (the
pieces were listed before), the first piece is swapped for a FIFO, so the worker that reads it
waits there, inside its task; the test finds that worker by the FIFO among its open files and
SIGKILLs it (what the OOM killer does)."""

from __future__ import annotations

import errno
import multiprocessing
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from cadenza.errors import CadenzaError
from cadenza.training.vae_data import build_cache

TIMEOUT = 60.0  # seconds: a functional limit (spawned workers import Cadenza first)


def _holding(path: Path) -> list[int]:
    """The child processes that have `path` open."""
    pids = []
    for child in multiprocessing.active_children():
        try:
            if any(os.readlink(f"/proc/{child.pid}/fd/{fd}") == str(path)
                   for fd in os.listdir(f"/proc/{child.pid}/fd")):
                pids.append(child.pid)
        except OSError:  # it ended meanwhile
            continue
    return pids


def _kill_the_reader_of(piece: Path, give_up: float) -> None:
    """Swap `piece` for a FIFO once workers exist, wait until one opens it, SIGKILL that one."""
    while not multiprocessing.active_children():
        assert time.monotonic() < give_up, "no worker started"
        time.sleep(0.001)
    piece.unlink()
    os.mkfifo(piece)
    while True:  # a FIFO's writer can open it (non-blocking) once a reader has
        try:
            writer = os.open(piece, os.O_WRONLY | os.O_NONBLOCK)
            break
        except OSError as e:
            assert e.errno == errno.ENXIO and time.monotonic() < give_up, "no worker read it"
            time.sleep(0.005)
    try:
        while not (pids := _holding(piece)):
            assert time.monotonic() < give_up, "no worker holds it"
            time.sleep(0.005)
        os.kill(pids[0], signal.SIGKILL)
    finally:
        os.close(writer)


def test_a_dead_grid_worker_ends_the_run_naming_the_piece(tmp_path, chorale_midi):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    names = ["a-doomed.mid", "b.mid", "c.mid", "d.mid"]  # the first task is the doomed one
    for name in names:
        (corpus / name).write_bytes(chorale_midi.read_bytes())
    give_up = time.monotonic() + TIMEOUT
    killer_failed: list[BaseException] = []

    def kill() -> None:
        try:
            _kill_the_reader_of(corpus / names[0], give_up)
        except BaseException as e:  # reported by the test's thread below
            killer_failed.append(e)

    killer = threading.Thread(target=kill, daemon=True)
    killer.start()
    with pytest.raises(CadenzaError) as e:
        build_cache([str(corpus)], tmp_path / "cache", jobs=2, progress=False)
    killer.join(TIMEOUT)
    assert not killer_failed, killer_failed
    message = str(e.value)
    assert "\n" not in message
    assert "worker process died" in message and str(corpus / names[0]) in message
    assert not (tmp_path / "cache" / "cache.json").exists()


def test_healthy_grid_workers_build_the_cache(tmp_path, chorale_midi):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for k in range(4):
        (corpus / f"{k}.mid").write_bytes(chorale_midi.read_bytes())
    out = build_cache([str(corpus)], tmp_path / "cache", jobs=2, progress=False)
    assert (out / "cache.json").is_file()
