"""Settings of `cadenza live`: one dataclass, filled from `--config live.yaml` then the command
line, each value checked by one entry of a validator table.

A bad value is a ConfigError naming the file and the field, e.g.
`live.yaml: output_channel: must be 1..16, got 17`: a musician setting up for a gig reads one
line and knows what to fix.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cadenza.errors import ConfigError, read_settings
from cadenza.manifest import MAX_STYLE_GUIDANCE
from cadenza.midi_status import DRUM_CHANNEL, SUSTAIN_PEDAL
from cadenza.realtime.clock import BeatGrid
from cadenza.realtime.controls import (
    ANSWER_SECONDS_RANGE,
    BEATS_PER_BAR_RANGE,
    BPM_RANGE,
    CHANNEL_RANGE,
    CONTROLLER_RANGE,
    DENSITY_RANGE,
    HARMONY_RANGE,
    LISTEN_MS_RANGE,
    LOOKAHEAD_RANGE,
    MAX_ANSWER_BARS,
    MAX_LOOP_BARS,
    MAX_VOICES,
    OFFSET_MS_RANGE,
    PROGRAM_RANGE,
    SILENCE_BEATS_RANGE,
    SILENCE_SECONDS_RANGE,
    TEMPERATURE_RANGE,
    VELOCITY_RANGE,
    CCMap,
)
from cadenza.realtime.inputs import InputRoute, input_routes
from cadenza.realtime.validators import (
    Rule,
    choice,
    flag,
    input_ports,
    integer,
    list_of,
    midi_file,
    number,
    optional,
    part_programs,
    text,
)

MODES = ("call-response", "accompany", "backing")
QUANTIZE = ("none", "beat", "bar")
ON_INTERRUPT = ("stop", "overlap")


@dataclass(frozen=True)
class AnswerLength:
    """How long an answer is: as long as the call, N bars of the grid, or N seconds.

    Written in YAML as `same-as-call`, `4 bars` or `6.5 s`."""

    unit: str = "call"  # call | bars | seconds
    amount: float = 1.0

    @classmethod
    def parse(cls, text: str) -> AnswerLength:
        text = text.strip().lower()
        if text in ("same-as-call", "same", "call"):
            return cls()
        match = re.fullmatch(r"(\d+(?:\.\d*)?)\s*(bars?|s|sec|seconds?)", text)
        if match is None:
            raise ValueError(f"expected same-as-call, 'N bars' or 'N s', got {text!r}")
        amount = float(match.group(1))
        if match.group(2).startswith("bar"):
            if amount != int(amount) or not 1 <= amount <= MAX_ANSWER_BARS:
                raise ValueError(f"bars must be a whole number 1..{MAX_ANSWER_BARS}, got {text!r}")
            return cls("bars", amount)
        low, high = ANSWER_SECONDS_RANGE
        if not low <= amount <= high:
            raise ValueError(f"seconds must be {low:g}..{high:g}, got {text!r}")
        return cls("seconds", amount)

    def seconds(self, call_seconds: float, grid: BeatGrid) -> float:
        if self.unit == "bars":
            return self.amount * grid.beats_per_bar * grid.seconds_per_beat
        if self.unit == "seconds":
            return self.amount
        return call_seconds

    def __str__(self) -> str:
        if self.unit == "call":
            return "same-as-call"
        return f"{self.amount:g} {'bars' if self.unit == 'bars' else 's'}"


@dataclass
class LiveConfig:
    mode: str = "call-response"  # call-response | accompany | backing
    # A substring of a port name, or several (`NAME:ROLES` each, see cadenza.realtime.inputs);
    # None: a virtual "cadenza in".
    input_port: str | tuple[str, ...] | None = None
    output_port: str | None = None  # None: a virtual "cadenza out"
    port_name: str = "cadenza"  # virtual ports are "<port_name> in" and "<port_name> out"
    input_channel: int | None = None  # 1..16 as musicians count; None: all channels
    output_channel: int = 1  # 1..16
    program: int | None = None  # General MIDI program 0..127 sent at start; None: none sent
    passthrough: bool = False  # echo the player's notes to the output
    bpm: float = 120.0  # the tempo, or the one used until a followed clock locks
    follow_clock: bool = False  # follow the MIDI clock arriving on the input port
    link: bool = False  # follow an Ableton Link session's tempo and beats (cadenza[link])
    send_clock: bool = False  # send MIDI clock at `bpm` on the output port
    quantize_answer_to: str = "none"  # none | beat | bar: where an answer starts
    beats_per_bar: int = 4
    silence_seconds: float = 1.0  # the pause that ends a phrase ...
    silence_beats: float | None = None  # ... or in beats of the grid, when set
    end_cc: int | None = None  # a CC (value >= 64) that ends a phrase at once
    answer_length: AnswerLength = field(default_factory=AnswerLength)
    on_interrupt: str = "stop"  # stop | overlap: the player comes in during an answer
    # The sampling knobs' starting values; None: the bundle's own (its manifest's sampling).
    temperature: float | None = None
    top_k: int | None = None  # 0: no limit
    top_p: float | None = None  # 1.0: no nucleus cut
    max_voices: int | None = None  # notes sounding at once (1: mono, 0: no limit)
    plugin: str | None = None  # None: the bundle's own
    bundle: str | None = None  # None: the default shipped bundle
    style: str | None = None  # a style of the bundle (transformer); None: untagged
    style_guidance: float | None = None  # hold to the style (1: none); None: the bundle's
    seed: int | None = None
    quiet: bool = False  # no live status line
    synth: bool = False  # play through a General MIDI SoundFont on the sound card
    soundfont: str | None = None  # None: the one found on the system
    lookahead_seconds: float = 1.0  # musical time generated ahead of playback
    loop: bool = False  # repeat the last answer until the player plays again
    # Backing mode: one MIDI channel per backing part (1..16). None: the channels after
    # output_channel (which carries the passthrough), skipping 10, General MIDI's drums.
    backing_channels: tuple[int, ...] | None = None
    backing_velocity: tuple[int, ...] = (80,)  # one for every part, or one per part
    backing_ports: bool = False  # each part on a virtual port of its own: "<port_name> <part>"
    # General MIDI programs (0..127), one per part, sent at start; None: the bundle's own.
    backing_programs: tuple[int, ...] | None = None
    # A backing part's program by its name (--program bass=33), over the list or the bundle's.
    part_programs: dict[str, int] = field(default_factory=dict)
    # A listening backing waits this long past a step's grid point for the player's note of
    # it (then plays at once with what it heard); 0: it plays on the grid point.
    listen_ms: float = 10.0
    # How far the backing leans on what goes with the player's note (None: the bundle's own).
    harmony: float | None = None
    density: float = 0.0  # bias on the backing's note-ons (log-odds): -3 sparse .. +3 busy
    loop_bars: int = 0  # repeat the last N bars of the backing; 0: off (generate on)
    record: str | None = None  # record the set into this MIDI file (session_record.py)
    offset_ms: float = 0.0  # every generated note sent this much later (earlier: backing only)
    realtime: bool = True  # real-time scheduling for the engine's threads where granted
    cc: CCMap = field(default_factory=CCMap)

    @property
    def input_routes(self) -> list[InputRoute]:
        """The input ports to open, each with its roles; [] for the virtual one."""
        if self.input_port is None:
            return []
        ports = (self.input_port,) if isinstance(self.input_port, str) else self.input_port
        return input_routes(ports)

    @property
    def knob_controllers(self) -> frozenset[int]:
        """The controller numbers mapped to knobs (an input's `controls` role)."""
        numbers = [getattr(self.cc, knob) for knob in CC_KNOBS] + [self.end_cc]
        return frozenset(n for n in numbers if n is not None)

    @property
    def input_channel_index(self) -> int | None:
        """The input channel as on the wire (0..15), as PhraseDetector takes it."""
        return None if self.input_channel is None else self.input_channel - 1

    @property
    def output_channel_index(self) -> int:
        return self.output_channel - 1

    def backing_channel_indices(self, parts: int) -> list[int]:
        """The wire channels (0..15) of `parts` backing parts; a ConfigError if the list given
        does not have one per part."""
        if self.backing_channels is None:
            taken = {self.output_channel, DRUM_CHANNEL + 1}  # never a default backing channel
            after = [(self.output_channel + k - 1) % 16 + 1 for k in range(1, 16)]
            free = [channel for channel in after if channel not in taken]
            return [channel - 1 for channel in free[:parts]]
        if len(self.backing_channels) != parts:
            raise ConfigError("backing_channels", f"the bundle has {parts} backing parts, got "
                              f"{len(self.backing_channels)} channels")
        return [channel - 1 for channel in self.backing_channels]

    def backing_velocities(self, parts: int) -> list[int]:
        velocities = self.backing_velocity
        if len(velocities) == 1:
            return list(velocities) * parts
        if len(velocities) != parts:
            raise ConfigError("backing_velocity", f"the bundle has {parts} backing parts, got "
                              f"{len(velocities)} velocities")
        return list(velocities)

    def backing_program_list(self, programs: list[int], names: list[str]) -> list[int]:
        """The programs to send, one per part (`names`): the bundle's `programs` unless
        given as a list, then any given by a part's name."""
        chosen = list(programs)
        if self.backing_programs is not None:
            if len(self.backing_programs) != len(programs):
                raise ConfigError("backing_programs", f"the bundle has {len(programs)} backing "
                                  f"parts, got {len(self.backing_programs)} programs")
            chosen = list(self.backing_programs)
        for name, program in self.part_programs.items():
            if name not in names:
                raise ConfigError("program", f"no backing part {name!r} (parts: "
                                  f"{', '.join(names)})")
            chosen[names.index(name)] = program
        return chosen

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["answer_length"] = str(self.answer_length)
        return out


def _answer_length(value: Any) -> AnswerLength:
    if isinstance(value, AnswerLength):
        return value
    if not isinstance(value, str):
        raise ValueError(f"expected same-as-call, 'N bars' or 'N s', got {value!r}")
    return AnswerLength.parse(value)


def _controller(value: Any) -> int:
    controller = integer(*CONTROLLER_RANGE)(value)
    if controller == SUSTAIN_PEDAL:
        raise ValueError("64 is the sustain pedal, which the phrase keeps")
    return controller


RULES: dict[str, Rule] = {
    "mode": choice(*MODES),
    "input_port": optional(input_ports),
    "output_port": optional(text),
    "port_name": text,
    "input_channel": optional(integer(*CHANNEL_RANGE)),
    "output_channel": integer(*CHANNEL_RANGE),
    "program": optional(integer(*PROGRAM_RANGE)),
    "passthrough": flag,
    "bpm": number(*BPM_RANGE),
    "follow_clock": flag,
    "link": flag,
    "send_clock": flag,
    "quantize_answer_to": choice(*QUANTIZE),
    "beats_per_bar": integer(*BEATS_PER_BAR_RANGE),
    "silence_seconds": number(*SILENCE_SECONDS_RANGE),
    "silence_beats": optional(number(*SILENCE_BEATS_RANGE)),
    "end_cc": optional(_controller),
    "answer_length": _answer_length,
    "on_interrupt": choice(*ON_INTERRUPT),
    "temperature": optional(number(*TEMPERATURE_RANGE)),
    "top_k": optional(integer(0)),
    "top_p": optional(number(0, 1, open_low=True)),
    "max_voices": optional(integer(0, MAX_VOICES)),
    "plugin": optional(text),
    "bundle": optional(text),
    "style": optional(text),
    "style_guidance": optional(number(0, MAX_STYLE_GUIDANCE)),
    "seed": optional(integer(0)),
    "quiet": flag,
    "synth": flag,
    "soundfont": optional(text),
    "lookahead_seconds": number(*LOOKAHEAD_RANGE),
    "loop": flag,
    "backing_channels": optional(list_of(integer(*CHANNEL_RANGE), unique=True)),
    "backing_velocity": list_of(integer(*VELOCITY_RANGE)),
    "backing_ports": flag,
    "backing_programs": optional(list_of(integer(*PROGRAM_RANGE))),
    "part_programs": part_programs,
    "listen_ms": number(*LISTEN_MS_RANGE),
    "harmony": optional(number(*HARMONY_RANGE)),
    "density": number(*DENSITY_RANGE),
    "loop_bars": integer(0, MAX_LOOP_BARS),
    "record": optional(midi_file),
    "offset_ms": number(*OFFSET_MS_RANGE),
    "realtime": flag,
}
CC_RULE = optional(_controller)
CC_KNOBS = tuple(f.name for f in dataclasses.fields(CCMap))


# Names a musician may well guess, which spelling distance would not lead to.
_GUESSES = {
    "tempo": "bpm",
    "channel": "output_channel",
    "in": "input_port",
    "out": "output_port",
    "cc_map": "cc",
    "knobs": "cc",
}


def _unknown(key: str, known: list[str]) -> str:
    close = [_GUESSES[key]] if key in _GUESSES else difflib.get_close_matches(key, known, n=1)
    return f"unknown setting (did you mean {close[0]}?)" if close else "unknown setting"


def _set(config: LiveConfig, key: str, value: Any, source: str, where: dict[str, str]) -> None:
    """Check and set one setting; `where` remembers who set it, for the cross-field checks."""
    label = f"{source}{key}"
    name = key.replace("-", "_")  # `output-channel:` as on the command line is fine too
    top, _, knob = name.partition(".")
    if top == "cc":
        if not knob:
            if not isinstance(value, dict):
                raise ConfigError(label, f"expected a mapping of knob: CC number, got {value!r}")
            for sub, sub_value in value.items():
                _set(config, f"{key}.{sub}", sub_value, source, where)
            return
        if knob not in CC_KNOBS:
            raise ConfigError(label, _unknown(knob, list(CC_KNOBS)))
        rule, target, attr = CC_RULE, config.cc, knob
    elif knob or name not in RULES:
        raise ConfigError(label, _unknown(name, [*RULES, "cc"]))
    else:
        rule, target, attr = RULES[name], config, name
    try:
        setattr(target, attr, rule(value))
    except ValueError as e:
        raise ConfigError(label, str(e)) from None
    where[name] = label


def _check_together(config: LiveConfig, where: dict[str, str]) -> None:
    """Settings that are each fine but not together."""

    def label(name: str) -> str:
        return where.get(name, name)

    if any("clock" in r.roles and r.named_roles for r in config.input_routes):
        config.follow_clock = True  # a port named for the clock is followed
        where.setdefault("follow_clock", label("input_port"))
    elif config.follow_clock and sum("clock" in r.roles for r in config.input_routes) > 1:
        raise ConfigError(label("input_port"), "several ports would carry the clock: name "
                          "the one to follow, e.g. --in 'DAW:clock'")
    if config.part_programs and config.mode != "backing":
        raise ConfigError(label("part_programs"), "PART=PROGRAM names a backing part: "
                          "use --mode backing (or --program N for the output channel)")
    if config.follow_clock and config.send_clock:
        name = "send_clock" if "send_clock" in where else "follow_clock"
        raise ConfigError(label(name), "cannot both follow and send MIDI clock")
    if config.link and (config.follow_clock or config.send_clock):
        # One grid at a time: answers would land on one, clock pulses on the other.
        name = "follow_clock" if config.follow_clock else "send_clock"
        raise ConfigError(label(name), "cannot be used with link: Link gives the tempo")
    if config.backing_ports and config.output_channel in (config.backing_channels or ()):
        # Each part's port carries its channel: the player's passthrough needs its own.
        raise ConfigError(label("backing_channels"), f"channel {config.output_channel} is "
                          "output_channel; with backing_ports each part needs its own channel")
    taken: dict[int, str] = {}
    if config.end_cc is not None:
        taken[config.end_cc] = "end_cc"
    for knob in CC_KNOBS:
        number = getattr(config.cc, knob)
        if number is None:
            continue
        if number in taken:
            raise ConfigError(label(f"cc.{knob}"), f"CC {number} is already {taken[number]}")
        taken[number] = f"cc.{knob}"


def load_live_config(
    path: str | Path | None = None, overrides: dict[str, Any] | None = None
) -> LiveConfig:
    """Defaults, then the YAML file, then `overrides` (the command line's options; a None
    value is an option not given and is skipped; dotted keys such as `cc.panic` reach knobs)."""
    config = LiveConfig()
    where: dict[str, str] = {}
    if path is not None:
        values = read_settings(path)
        for key, value in values.items():
            _set(config, str(key), value, f"{path}: ", where)
    for key, value in (overrides or {}).items():
        if value is not None:
            _set(config, key, value, "", where)
    _check_together(config, where)
    return config
