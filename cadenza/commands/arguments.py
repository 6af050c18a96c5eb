"""argparse `type=` functions shared by every subcommand: a bad number or path is argparse's
one error line naming the flag (exit 2), before any work starts.

Numbers must be finite and in range (`nan`, `inf`, `1e300`, a negative count are refused);
output paths must be writable: not an existing directory where a file goes (nor a file where
a folder goes), under a parent that is, or can become, a writable directory.
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable
from pathlib import Path

MAX_SECONDS = 24 * 3600.0  # a day: more is a typo, and would not fit in memory anyway
MAX_COUNT = 1_000_000  # samples, steps, clips, pieces: far beyond any real run
MAX_JOBS = 1024
MIDI_PROGRAM = (0, 127)
MIDI_CONTROLLER = (0, 127)


def _named(check: Callable[[str], object], name: str) -> Callable[[str], object]:
    check.__name__ = name  # argparse names the type in some of its messages
    return check


def number(low: float, high: float, *, open_low: bool = False) -> Callable[[str], float]:
    """A finite float in low..high (excluding low with open_low)."""

    def check(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
        if (value <= low if open_low else value < low) or value > high:
            above = "positive" if low == 0 else f"above {low:g}"
            span = f"{above}, at most {high:g}" if open_low else f"{low:g}..{high:g}"
            raise argparse.ArgumentTypeError(f"must be {span}, got {text}")
        return value

    return _named(check, "number")


def whole(low: int, high: int) -> Callable[[str], int]:
    """A whole number in low..high."""

    def check(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be {low}..{high}, got {text}")
        return value

    return _named(check, "whole number")


def midi_value(low: int = 0, high: int = 127) -> Callable[[str], int]:
    """A MIDI program, controller, velocity or channel: a whole number in low..high."""
    return whole(low, high)


positive_seconds = number(0.0, MAX_SECONDS, open_low=True)
non_negative_seconds = number(0.0, MAX_SECONDS)
positive_float = number(0.0, 1e6, open_low=True)
non_negative_float = number(0.0, 1e6)
count = whole(1, MAX_COUNT)
non_negative_count = whole(0, MAX_COUNT)
jobs = whole(1, MAX_JOBS)
seed = whole(0, 2**32 - 1)
program = midi_value(*MIDI_PROGRAM)
controller = midi_value(*MIDI_CONTROLLER)


def part_program(text: str) -> tuple[str | None, int]:
    """A General MIDI program for every part (`33`) or for one part by name (`bass=33`)."""
    name, sep, value = text.rpartition("=")
    if sep and not name.strip():
        raise argparse.ArgumentTypeError(f"expected PROGRAM or PART=PROGRAM, got {text!r}")
    return (name.strip() or None), program(value)


part_program.__name__ = "program"


def sampling_setting(text: str) -> tuple[str, float | int]:
    """A bundle's default knob, `KNOB=VALUE` (its range is the manifest's, checked on write)."""
    knob, sep, value = text.partition("=")
    if not sep or not knob.strip():
        raise argparse.ArgumentTypeError(f"expected KNOB=VALUE, got {text!r}")
    try:
        return knob.strip(), int(value)
    except ValueError:
        return knob.strip(), number(-MAX_COUNT, MAX_COUNT)(value)


sampling_setting.__name__ = "setting"


def _writable_parent(path: Path) -> None:
    """The nearest existing ancestor of `path` must be a writable directory."""
    parent = path.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise argparse.ArgumentTypeError(f"{path}: {parent} is not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise argparse.ArgumentTypeError(f"{path}: cannot write in {parent}")


def output_file(text: str) -> str:
    """A file to write: not a directory, in a folder that can be written."""
    path = Path(text)
    if not text or path.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: is a folder, expected a file to write")
    _writable_parent(path)
    return text


def output_dir(text: str) -> str:
    """A folder to write into: an existing folder, or one that can be made."""
    path = Path(text)
    if not text or (path.exists() and not path.is_dir()):
        raise argparse.ArgumentTypeError(f"{text}: is a file, expected a folder")
    if path.is_dir():
        if not os.access(path, os.W_OK | os.X_OK):
            raise argparse.ArgumentTypeError(f"{text}: cannot write in this folder")
    else:
        _writable_parent(path)
    return text


def input_file(text: str) -> str:
    """A file to read: it exists and is not a folder."""
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: is a folder, expected a file")
    if not path.exists():
        raise argparse.ArgumentTypeError(f"{text}: no such file")
    return text


class Parser(argparse.ArgumentParser):
    """argparse's parser, whose errors are one line like Cadenza's own: `cadenza: error:
    argument --seconds: must be a finite number, got nan (see cadenza generate --help)`."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"cadenza: error: {message} (see {self.prog} --help)\n")
