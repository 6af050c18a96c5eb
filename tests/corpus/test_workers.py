"""A worker process that dies (OOM-killed, say) ends the corpus run in one line naming the
piece, instead of waiting forever. The death is real: the worker function given to
process_pieces SIGKILLs its own process on one piece (the fork start method carries the
test module's function into the worker; no hook in Cadenza's code)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from cadenza.corpus.common import process_pieces
from cadenza.corpus.sources import Piece
from cadenza.errors import CadenzaError


def _work(task):
    index, name = task
    if name == "doomed.mid":
        os.kill(os.getpid(), signal.SIGKILL)  # what the OOM killer does
    return index, [index], None


class _Writer:
    def __init__(self):
        self.added, self.closed = [], False

    def add(self, index, output):
        self.added.append(index)

    def close(self):
        self.closed = True


def test_dead_worker_ends_the_run_naming_the_piece(tmp_path):
    names = ["a.mid", "b.mid", "doomed.mid", "c.mid"]
    pieces = [Piece(n, tmp_path / n, "midi") for n in names]
    writers = {s: _Writer() for s in ("train", "valid", "test")}
    tasks = [(i, n) for i, n in enumerate(names)]
    with pytest.raises(CadenzaError) as e:
        process_pieces(
            _work, tasks, pieces, writers, jobs=2, chunksize=1, desc="prepare",
            progress=False, failure="no piece worked",
        )
    message = str(e.value)
    assert "\n" not in message
    assert "worker process died" in message and str(tmp_path / "doomed.mid") in message
    assert all(w.closed for w in writers.values())


def test_healthy_workers_still_work(tmp_path):
    names = [f"{i}.mid" for i in range(6)]
    pieces = [Piece(n, Path(tmp_path / n), "midi") for n in names]
    writers = {s: _Writer() for s in ("train", "valid", "test")}
    reasons = process_pieces(
        _work, [(i, n) for i, n in enumerate(names)], pieces, writers, jobs=2, chunksize=2,
        desc="prepare", progress=False, failure="no piece worked",
    )
    assert reasons == {}
    assert sorted(i for w in writers.values() for i in w.added) == list(range(6))
