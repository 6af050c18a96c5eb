"""Rules that check one setting of `cadenza live` (from YAML or the command line): each takes
the value as written, returns it checked and normalised, or raises ValueError saying what is
wrong in words a musician reads (config.py names the file and the field).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cadenza.realtime.inputs import input_routes

Rule = Callable[[Any], Any]


def optional(rule: Rule) -> Rule:
    return lambda value: None if value is None else rule(value)


def integer(low: int, high: int | None = None) -> Rule:
    def check(value: Any) -> int:
        if isinstance(value, str) and re.fullmatch(r"[+-]?\d+", value.strip()):
            value = int(value)  # from the command line
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError(f"expected a whole number, got {value!r}")
        if value < low or (high is not None and value > high):
            raise ValueError(
                f"must be {low}..{high}, got {value}"
                if high is not None
                else f"must be at least {low}, got {value}"
            )
        return value

    return check


def number(low: float, high: float, *, open_low: bool = False) -> Rule:
    def check(value: Any) -> float:
        if isinstance(value, str):
            try:
                value = float(value)  # YAML 1.1 reads 1e-3 as a string
            except ValueError:
                pass
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise ValueError(f"expected a number, got {value!r}")
        value = float(value)
        if not (low < value if open_low else low <= value) or not value <= high:
            bracket = "(" if open_low else ""
            raise ValueError(f"must be {bracket}{low:g}..{high:g}, got {value:g}")
        return value

    return check


def flag(value: Any) -> bool:
    if isinstance(value, str):
        value = {
            "true": True,
            "yes": True,
            "on": True,
            "false": False,
            "no": False,
            "off": False,
        }.get(value.strip().lower(), value)
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {value!r}")
    return value


def choice(*options: str) -> Rule:
    def check(value: Any) -> str:
        if value not in options:
            raise ValueError(f"must be one of {', '.join(options)}, got {value!r}")
        return value

    return check


def text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"expected a non-empty string, got {value!r}")
    return value


def list_of(rule: Rule, *, unique: bool = False) -> Rule:
    """A list of values, from YAML (`[2, 3, 4]`, or one value) or the command line (`2,3,4`)."""

    def check(value: Any) -> tuple:
        if isinstance(value, str):
            value = [v for v in value.replace(" ", ",").split(",") if v]
        elif not isinstance(value, (list, tuple)):
            value = [value]
        if not value:
            raise ValueError("expected at least one value")
        items = tuple(rule(v) for v in value)
        if unique and len(set(items)) != len(items):
            raise ValueError(f"each value once, got {', '.join(map(str, items))}")
        return items

    return check


def input_ports(value: Any) -> str | tuple[str, ...]:
    """One port (a name) or several (a list, or --in given again), roles checked."""
    ports = [value] if isinstance(value, str) else value
    if not isinstance(ports, (list, tuple)) or not ports:
        raise ValueError(f"expected a port name or a list of them, got {value!r}")
    ports = tuple(text(port) for port in ports)
    input_routes(ports)
    return ports[0] if len(ports) == 1 else ports


def midi_file(value: Any) -> str:
    """A MIDI file to write: .mid or .midi, in a folder that exists."""
    path = Path(text(value)).expanduser()
    if path.suffix.lower() not in (".mid", ".midi"):
        raise ValueError(f"expected a .mid file, got {value!r}")
    if path.is_dir() or not path.parent.is_dir():
        where = "is a folder" if path.is_dir() else f"folder {str(path.parent)!r} does not exist"
        raise ValueError(f"{value!r}: {where}")
    return str(path)


def part_programs(value: Any) -> dict[str, int]:
    """A mapping of backing part name to General MIDI program."""
    if not isinstance(value, dict):
        raise ValueError(f"expected a mapping of part: program, got {value!r}")
    program = integer(0, 127)  # a General MIDI program
    return {text(name): program(number) for name, number in value.items()}
