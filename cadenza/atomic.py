"""The one way Cadenza writes a file that a later run reads (checkpoints, bundles, caches,
corpus files): into a temporary file in the same folder, fsynced, then `os.replace`d over the
target. A reader sees the old file or the whole new one, never a truncated one, whether the
writer is killed, runs out of disk or raises midway; the temporary file is removed on failure.

- `atomic_write(path, data)` / `atomic_write_text(path, text)`: bytes or text at once.
- `atomic_path(path)`: a context manager yielding the temporary path, for writers that take a
  path and stream (torch.save, np.save, np.lib.format.open_memmap, savefig). The temporary
  name keeps the target's suffix, so writers that infer a format or append one (np.save adds
  ".npy" to a name without it) write to exactly that path.
- `atomic_open(path, mode)`: the same, yielding an open file.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any


def temp_path_for(path: Path) -> Path:
    """A fresh hidden name beside `path`, with its suffix (same folder: same file system)."""
    return path.with_name(f".{path.stem}.{secrets.token_hex(4)}.tmp{path.suffix}")


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(folder: Path) -> None:
    """The rename made durable; not every platform lets a folder be opened (Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on a clean exit, fsync it and replace `path`
    with it. On any exception (or a kill) `path` is untouched and the temporary is removed
    (a kill -9 can leave a hidden `.NAME.XXXX.tmp.SUFFIX`, never a truncated `path`)."""
    path = Path(path)
    tmp = temp_path_for(path)
    try:
        yield tmp
        _fsync_file(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _fsync_dir(path.parent)


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "wb", **kwargs: Any) -> Iterator[IO[Any]]:
    """An open temporary file beside `path` (mode "w" or "wb"), replacing `path` on a clean
    exit. A file left open by the caller is flushed and closed here."""
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open: mode {mode!r}; use 'w' or 'wb'")
    with atomic_path(path) as tmp:
        with open(tmp, mode, **kwargs) as file:
            yield file


def atomic_write(path: str | Path, data: bytes) -> None:
    """`path` holds exactly `data`, or (on failure) what it held before."""
    with atomic_open(path, "wb") as file:
        file.write(data)


def atomic_write_text(path: str | Path, text: str, encoding: str = "utf-8") -> None:
    """`path` holds exactly `text`, or (on failure) what it held before."""
    atomic_write(path, text.encode(encoding))
