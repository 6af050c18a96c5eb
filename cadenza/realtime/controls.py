"""The live engine's control surface, in one place: every limit of the live settings, the
curves that turn a controller's value (CC 0..127) into a knob, the keys that turn the knobs from
the terminal, and ControlSurface, through which a CC, a key or a test turns them.

The knobs a generator has whatever the mode (temperature, style) are turned here; the ones
whose meaning depends on the mode (bars, loop, density, mutate, interrupt, another bundle) are
handed to the mode that plays (cadenza.realtime.mode.LiveMode), which clamps them to the limits
below. config.py checks the settings against the same limits.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from cadenza.midi_status import SWITCH_ON
from cadenza.plugins.backing import HARMONY_RANGE as HARMONY_RANGE  # re-exported: see below
from cadenza.plugins.voices import MAX_VOICES as MAX_VOICES  # re-exported: max_voices' limit
from cadenza.realtime.bundle_select import BundleSelector
from cadenza.realtime.mode import LiveMode

# --- limits (and HARMONY_RANGE, MAX_VOICES: the plugins' own, imported above) --------------
TEMPERATURE_RANGE = (0.1, 2.0)  # Magenta's temperature knob range
TEMPERATURE_STEP = 0.1  # per key press
MAX_ANSWER_BARS = 64  # an answer of N bars, set or turned
DEFAULT_ANSWER_BARS = 2  # where the bars key starts when the answer is not in bars
ANSWER_BARS_CC = (1, 16)  # the answer-length CC's travel: 128 values spread over 16 bars
ANSWER_SECONDS_RANGE = (0.5, 120.0)  # an answer of N seconds
SILENCE_SECONDS_RANGE = (0.05, 60.0)  # the pause that ends a phrase, as set ...
SILENCE_KEY_RANGE = (0.1, 8.0)  # ... and as the keys turn it
SILENCE_STEP = 0.1  # seconds, per key press
SILENCE_BEATS_RANGE = (0.25, 64.0)
LISTEN_MS_RANGE = (0.0, 50.0)  # how long past a grid point a listening backing waits
OFFSET_MS_RANGE = (-500.0, 500.0)  # latency compensation of the generated notes
DENSITY_RANGE = (-3.0, 3.0)  # log-odds bias on the backing's note-ons: sparser .. busier
DENSITY_STEP = 0.5  # per key press
MAX_LOOP_BARS = 16  # the backing's loop
BPM_RANGE = (20.0, 400.0)
BEATS_PER_BAR_RANGE = (1, 16)
LOOKAHEAD_RANGE = (0.05, 10.0)  # seconds of music generated ahead of playback
CHANNEL_RANGE = (1, 16)  # as musicians count
PROGRAM_RANGE = (0, 127)
VELOCITY_RANGE = (1, 127)
CONTROLLER_RANGE = (0, 127)
CC_VALUE_RANGE = (0, 127)
VOICES_KNOB = (1, 8)  # the voices knob's travel (CC, keys); above its top: no limit (0)
CFG_RANGE = (1.0, 10.0)  # `cadenza audio`'s guidance; 1: none (the conditioned logits alone)
CFG_STEP = 0.5  # per key press


def clamp(value: float, bounds: tuple[float, float]) -> float:
    low, high = bounds
    return min(high, max(low, value))


# --- CC curves ---------------------------------------------------------------------------
def _cc(value: int) -> int:
    return int(clamp(value, CC_VALUE_RANGE))


def linear_from_cc(value: int, low: float, high: float) -> float:
    """A CC value 0..127 to low..high, linearly (out-of-range values are clamped)."""
    return low + (high - low) * _cc(value) / 127


def temperature_from_cc(value: int) -> float:
    """A CC value 0..127 to a temperature 0.1..2.0, linearly, as Magenta's MIDI interface."""
    return linear_from_cc(value, *TEMPERATURE_RANGE)


def style_from_cc(value: int, styles: list[str]) -> str | None:
    """A CC value 0..127 to one of None ("any") and `styles`, in equal ranges."""
    choices = [None, *styles]
    return choices[_cc(value) * len(choices) // 128]


def voices_from_cc(value: int) -> int:
    """A CC value 0..127 to at most 1..8 voices, and no limit (0) at the top, in equal ranges:
    turned up, the answer gets fuller; fully left it is monophonic."""
    low, high = VOICES_KNOB
    choices = [*range(low, high + 1), 0]
    return choices[_cc(value) * len(choices) // 128]


def answer_bars_from_cc(value: int) -> int:
    """A CC value 0..127 to an answer of 1..16 bars."""
    low, high = ANSWER_BARS_CC
    return low + _cc(value) * (high - low) // 127


def density_from_cc(value: int) -> float:
    """A CC value 0..127 to a density -3..+3, with 64 (a centred knob) at exactly 0."""
    return clamp((_cc(value) - 64) * DENSITY_RANGE[1] / 63, DENSITY_RANGE)


# --- the surface -------------------------------------------------------------------------
@dataclass
class CCMap:
    """Controller numbers of the knobs (None: not mapped), as `cc:` in live.yaml sets them."""

    temperature: int | None = None  # 0..127 -> 0.1..2.0, see temperature_from_cc
    answer_length: int | None = None  # 0..127 -> 1..16 bars, see answer_bars_from_cc
    panic: int | None = None  # value >= 64: all notes off
    mutate: int | None = None  # value >= 64: answer the last call again
    style: int | None = None  # 0..127 across "any" and the bundle's styles, see style_from_cc
    density: int | None = None  # 0..127 -> -3..+3 (64: 0), see density_from_cc (backing)
    loop: int | None = None  # value >= 64: loop on/off (backing: the last loop_bars bars)
    bundle: int | None = None  # 0..127 across every bundle the mode plays, see BundleSelector
    voices: int | None = None  # 0..127 -> 1..8 voices, then no limit, see voices_from_cc


KEYS_HELP = (
    "keys: +/- temperature  {/} voices  [/] answer (backing: loop) bars  </> silence  "
    "(/) density  "
    "p panic  m mutate  l loop  n next bundle  s style  r record  q quit"
)


class ControlSurface:
    """The knobs of a running engine, from any thread (a key, a CC on the control thread).

    `panic_output` silences the output after the mode's interrupt (the scheduler's panic);
    `stop` ends the engine (the `q` key); `record` starts or stops a take (the `r` key)."""

    def __init__(self, cc: CCMap, mode: LiveMode, *, seed: int | None,
                 panic_output: Callable[[], None], stop: Callable[[], None],
                 record: Callable[[], None] = lambda: None):
        self.cc = cc
        self.mode = mode
        self.seed = seed
        self._panic_output = panic_output
        self.stop = stop
        self.record = record
        self.error: str | None = None  # the last key or knob that failed, for the status line
        self.errors = 0
        self.bundles = BundleSelector(mode, seed=seed, on_error=self.failed)

    # --- generator knobs, whatever the mode -------------------------------------------------
    def turn_temperature(self, delta: float) -> None:
        knobs = self.mode.generator.knobs
        knobs.temperature = round(clamp(knobs.temperature + delta, TEMPERATURE_RANGE), 2)

    def turn_voices(self, delta: int) -> None:
        """Notes sounding at once in what the generator makes next (event plugins), along the
        knob's travel: 1..8, then no limit above the top."""
        knobs = self.mode.generator.knobs
        low, high = VOICES_KNOB
        value = min(knobs.max_voices or high + 1, high + 1)
        value = int(clamp(value + delta, (low, high + 1)))
        knobs.max_voices = 0 if value > high else value

    @property
    def styles(self) -> list[str]:
        return self.mode.generator.styles

    def set_style(self, style: str | None) -> None:
        """Condition the generator on a style from the next event it makes."""
        if style is not None and style not in self.styles:
            return  # a knob, not a command line: an unknown style leaves the knob where it is
        self.mode.set_style(style)

    def turn_style(self, delta: int) -> None:
        choices = [None, *self.styles]
        if len(choices) > 1:
            self.set_style(choices[(choices.index(self.mode.style) + delta) % len(choices)])

    def next_bundle(self) -> None:
        """Switch to the next bundle found that the mode can play (in backing mode: backing
        parts, as many as there are channels), round and round; loaded on a thread."""
        self.bundles.step(+1)

    # --- knobs the mode gives their meaning -------------------------------------------------
    def turn_answer_bars(self, delta: int) -> None:
        """Bars of the answer; in backing mode, of the loop."""
        self.mode.turn_bars(delta)

    def turn_silence(self, delta: float) -> None:
        self.mode.turn_silence(delta)

    def toggle_loop(self) -> None:
        self.mode.toggle_loop()

    def set_density(self, density: float) -> None:
        """The backing's note-on bias (log-odds), from the next step it generates."""
        self.mode.set_density(density)

    def turn_density(self, delta: float) -> None:
        self.mode.turn_density(delta)

    def mutate(self, t: float | None = None) -> None:
        """Answer the last call again, differently; in backing mode, the loop's bars afresh."""
        self.mode.mutate(t)

    def interrupt(self) -> None:
        """Stop what the mode plays now, and end its sounding notes."""
        self.mode.interrupt()

    def panic(self) -> None:
        self.mode.interrupt()
        self._panic_output()

    # --- inputs ------------------------------------------------------------------------------
    def failed(self, what: str, error: BaseException) -> None:
        """A key or knob raised: the set goes on, and the status line says what failed."""
        self.errors += 1
        self.error = f"{what} failed: {type(error).__name__}: {error}"

    def control_change(self, t: float, number: int, value: int) -> bool:
        """A mapped CC turns its knob; True when the message was a knob. A knob that fails
        is reported (failed()), never raised: the control loop goes on."""
        try:
            return self._control_change(t, number, value)
        except Exception as error:
            self.failed(f"CC {number}", error)
            return True

    def _control_change(self, t: float, number: int, value: int) -> bool:
        cc, switched = self.cc, value >= SWITCH_ON
        if number == cc.temperature:
            self.mode.generator.knobs.temperature = temperature_from_cc(value)
        elif number == cc.voices:
            self.mode.generator.knobs.max_voices = voices_from_cc(value)
        elif number == cc.answer_length:
            self.mode.set_answer_bars(answer_bars_from_cc(value))
        elif number == cc.style:
            self.set_style(style_from_cc(value, self.styles))
        elif number == cc.panic and switched:
            self.panic()
        elif number == cc.mutate and switched:
            self.mutate(t)
        elif number == cc.density:
            self.set_density(density_from_cc(value))
        elif number == cc.loop and switched:
            self.toggle_loop()
        elif number == cc.bundle:
            self.bundles.select_cc(value)
        else:
            return False
        return True

    def press(self, key: str) -> None:
        """One terminal key (KEYS_HELP); others are ignored. Letters in either case. A key
        whose action fails is reported (failed()), never raised: the next key still works."""
        try:
            self._press(key)
        except Exception as error:
            self.failed(f"key {key!r}", error)

    def _press(self, key: str) -> None:
        actions: dict[str, Callable[[], None]] = {
            "+": lambda: self.turn_temperature(+TEMPERATURE_STEP),
            "=": lambda: self.turn_temperature(+TEMPERATURE_STEP),
            "-": lambda: self.turn_temperature(-TEMPERATURE_STEP),
            "}": lambda: self.turn_voices(+1),
            "{": lambda: self.turn_voices(-1),
            "]": lambda: self.turn_answer_bars(+1),
            "[": lambda: self.turn_answer_bars(-1),
            ">": lambda: self.turn_silence(+SILENCE_STEP),
            "<": lambda: self.turn_silence(-SILENCE_STEP),
            ")": lambda: self.turn_density(+DENSITY_STEP),
            "(": lambda: self.turn_density(-DENSITY_STEP),
            "p": self.panic,
            "m": lambda: self.mutate(None),
            "l": self.toggle_loop,
            "n": self.next_bundle,
            "s": lambda: self.turn_style(+1),
            "r": self.record,
            "q": self.stop,
        }
        action = actions.get(key.lower() if key.isalpha() else key)
        if action is not None:
            action()
