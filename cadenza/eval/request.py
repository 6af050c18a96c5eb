"""What `cadenza eval` was asked, in one object every kind's evaluator takes.

Each model kind's evaluator (see cadenza.kinds) reads the fields that mean something for it
and ignores the rest: an event model's report uses `settings` and the style critic, a
backing's its `harmony`, codec-lm's neither.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from cadenza.bundle import Bundle
from cadenza.errors import ConfigError
from cadenza.eval.metrics import DEFAULT_BEAT_SECONDS

HELD_OUT_SPLITS = ("valid", "test")


@dataclass
class EvalSettings:
    samples: int = 20
    seconds: float = 20.0
    primer_seconds: float = 5.0
    seed: int = 0
    beat_seconds: float = DEFAULT_BEAT_SECONDS
    nll_events: int | None = None  # None: the whole held-out split
    piano_rolls: int = 4
    # The held-out split scored and compared with: "test" for the figures a report gives,
    # "valid" for choosing settings (sampling defaults) without looking at the test pieces.
    split: str = "test"

    def check(self) -> None:
        for name, value, low in (("--samples", self.samples, 2), ("--seconds", self.seconds, 1),
                                 ("--primer-seconds", self.primer_seconds, 0),
                                 ("--bpm", 60 / self.beat_seconds, 1)):
            if not value >= low or math.isinf(value):
                raise ConfigError(name, f"must be at least {low}, got {value:g}")
        if self.split not in HELD_OUT_SPLITS:
            raise ConfigError("--split", f"is {self.split!r:.40}, not one of "
                              f"{', '.join(HELD_OUT_SPLITS)}")


@dataclass
class EvalRequest:
    data: str | Path | None = None  # the corpus (None: the bundle's training corpus)
    settings: EvalSettings = field(default_factory=EvalSettings)
    critic: str | Path | None = None  # the style critic's bundle (None: the shipped one)
    use_critic: bool = True
    harmony: float | None = None  # a backing's harmony knob (None: the bundle's own)
    compare: list[str | Path] = field(default_factory=list)  # bundles beside the first
    progress: bool = True

    @property
    def seed(self) -> int:
        return self.settings.seed


def corpus_of(bundle: Bundle, data: str | Path | None) -> Path:
    """--data, else the corpus the bundle was trained on (its manifest says which)."""
    chosen = data or bundle.training.get("data")
    if not chosen:
        raise ConfigError("--data", f"{bundle.path} does not name its training corpus; give one")
    path = Path(chosen)
    if not path.is_dir():
        raise ConfigError("--data", f"{path} is not a prepared corpus directory (run `cadenza "
                          "corpus prepare SOURCE -o DIR` first: a MIDI folder, or music21's "
                          "corpus with pip install 'cadenza[train]')")
    return path
