"""The knobs of a generated audio stream (`cadenza audio`): temperature and CFG coefficient,
turned from terminal keys and MIDI CCs while it plays.

The keys are live's where they mean the same (+/- temperature by the same step, q quit), and a
CC maps 0..127 linearly onto a knob's range as `cadenza live` maps its temperature CC: the steps,
ranges and curve are cadenza.realtime.controls'. Values are written into the generator's
own attributes, which it reads at each step: a float assignment is atomic, so the generating
thread needs no lock; the two writers here (keys, MIDI) share one.
"""

from __future__ import annotations

import threading
from typing import Any

from cadenza.midi_status import CONTROL_CHANGE, kind_of, well_formed
from cadenza.realtime.controls import (
    CFG_RANGE,
    CFG_STEP,
    TEMPERATURE_RANGE,
    TEMPERATURE_STEP,
    clamp,
    linear_from_cc,
)
from cadenza.realtime.keys import KeyReader
from cadenza.realtime.ports import MidiInput

AUDIO_KEYS_HELP = "keys: +/- temperature  [/] cfg  q quit"
MIDI_POLL_SECONDS = 0.01  # a knob turned within 10 ms is soon enough for a generator step


def _parent(target: Any, path: str) -> tuple[Any, str]:
    """The object holding a dotted attribute path, and the last name."""
    *parents, name = path.split(".")
    for part in parents:
        target = getattr(target, part)
    return target, name


class AudioKnobs:
    """Temperature and CFG of `target`, from keys and MIDI CCs.

    `temperature` and `cfg` name the target's attributes, dotted to reach nested ones: for the
    codec-lm plugin, AudioKnobs(plugin, temperature="knobs.temperature", cfg="cfg_coef").
    `temperature_cc`, `cfg_cc`: controller numbers (None: not mapped), on any channel, read
    from `midi` (a cadenza.realtime.ports.MidiInput the caller opens and closes) while
    started. `q` sets `quit` (an Event the caller waits on alongside the stream).
    """

    def __init__(self, target: Any, *, temperature: str = "temperature", cfg: str = "cfg",
                 temperature_cc: int | None = None, cfg_cc: int | None = None,
                 midi: MidiInput | None = None,
                 temperature_range: tuple[float, float] = TEMPERATURE_RANGE,
                 cfg_range: tuple[float, float] = CFG_RANGE):
        self._temperature = _parent(target, temperature)
        self._cfg = _parent(target, cfg)
        self.temperature_cc, self.cfg_cc = temperature_cc, cfg_cc
        self.temperature_range, self.cfg_range = temperature_range, cfg_range
        self.midi = midi
        self.quit = threading.Event()
        self._lock = threading.Lock()  # keys and MIDI turn the same knobs
        self._keys = KeyReader(self.press)
        self._stop = threading.Event()
        self._midi_thread: threading.Thread | None = None

    @property
    def temperature(self) -> float:
        return float(getattr(*self._temperature))

    @property
    def cfg(self) -> float:
        return float(getattr(*self._cfg))

    def status(self) -> str:
        return f"temp {self.temperature:.2f} | cfg {self.cfg:.1f}"

    # ----- turning -----

    def _set(self, knob: tuple[Any, str], value: float, bounds: tuple[float, float]) -> None:
        with self._lock:
            setattr(*knob, round(clamp(value, bounds), 2))

    def turn_temperature(self, delta: float) -> None:
        self._set(self._temperature, self.temperature + delta, self.temperature_range)

    def turn_cfg(self, delta: float) -> None:
        self._set(self._cfg, self.cfg + delta, self.cfg_range)

    def press(self, key: str) -> None:
        """One terminal key (AUDIO_KEYS_HELP); others are ignored."""
        actions = {
            "+": lambda: self.turn_temperature(+TEMPERATURE_STEP),
            "=": lambda: self.turn_temperature(+TEMPERATURE_STEP),
            "-": lambda: self.turn_temperature(-TEMPERATURE_STEP),
            "]": lambda: self.turn_cfg(+CFG_STEP),
            "[": lambda: self.turn_cfg(-CFG_STEP),
            "q": self.quit.set,
            "Q": self.quit.set,
        }
        action = actions.get(key)
        if action is not None:
            action()

    def control(self, number: int, value: int) -> bool:
        """A control change; True when it turned a knob."""
        if number == self.temperature_cc:
            self._set(self._temperature, linear_from_cc(value, *self.temperature_range),
                      self.temperature_range)
        elif number == self.cfg_cc:
            self._set(self._cfg, linear_from_cc(value, *self.cfg_range), self.cfg_range)
        else:
            return False
        return True

    # ----- the threads -----

    def start(self) -> bool:
        """Read the MIDI input (if any) and the terminal's keys (if stdin is a terminal);
        True when keys are read, so the caller shows AUDIO_KEYS_HELP."""
        if self.midi is not None and self._midi_thread is None:
            self._midi_thread = threading.Thread(target=self._read_midi,
                                                 name="cadenza-audio-knobs", daemon=True)
            self._midi_thread.start()
        return self._keys.start()

    def stop(self) -> None:
        """Stop both readers and restore the terminal; safe to call twice."""
        self._stop.set()
        self._keys.stop()
        if self._midi_thread is not None:
            self._midi_thread.join(timeout=1.0)

    def _read_midi(self) -> None:
        while not self._stop.wait(MIDI_POLL_SECONDS):
            for _, message in self.midi.drain():
                if well_formed(message) and kind_of(message) == CONTROL_CHANGE:
                    self.control(message[1], message[2])
