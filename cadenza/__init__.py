"""Cadenza: real-time music generation. `cadenza.load(name)` opens a model (cadenza.api)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# `cadenza.__version__`: the installed distribution's version, or pyproject.toml's in a source
# tree that was never installed. Looked up on first use (the metadata scan costs ~30 ms).
_VERSION: str | None = None


def _version() -> str:
    global _VERSION
    if _VERSION is None:
        from importlib import metadata

        try:
            _VERSION = metadata.version("cadenza")
        except metadata.PackageNotFoundError:
            import re
            from pathlib import Path

            pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
            text = pyproject.read_text() if pyproject.is_file() else ""
            found = re.search(r'^version\s*=\s*"([^"]+)"', text, re.MULTILINE)
            _VERSION = found.group(1) if found else "0+unknown"
    return _VERSION


# The Python API (cadenza/api.py), imported on first use: `import cadenza.realtime` or the
# CLI must not pay for onnxruntime and the plugins when they do not use them.
__all__ = ["Model", "Music", "load"]

if TYPE_CHECKING:
    __version__: str
    from cadenza.api import Model, Music, load


def __getattr__(name: str) -> Any:
    if name == "__version__":
        return _version()
    if name in __all__:
        api = importlib.import_module("cadenza.api")
        return getattr(api, name)
    raise AttributeError(f"module 'cadenza' has no attribute {name!r}")
