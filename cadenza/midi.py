"""MIDI files <-> note arrays, with the sustain pedal applied the way note_seq applies it."""

from __future__ import annotations

import collections
import io
from dataclasses import dataclass
from pathlib import Path

import mido
import numpy as np

from cadenza.errors import MidiFileError
from cadenza.notes import DRUM_CHANNEL, NOTE_DTYPE, empty_notes, sort_notes

SUSTAIN_CC = 64
PEDAL_DTYPE = np.dtype([("time", "f8"), ("channel", "i1"), ("value", "i2")])


@dataclass
class MidiContent:
    """What a file holds that the models use: notes and sustain-pedal changes, in seconds."""

    notes: np.ndarray
    pedal: np.ndarray
    programs: dict[int, int]  # channel -> first program seen on it


def read_midi(path: str | Path) -> MidiContent:
    """Read a type 0/1 (or 2) MIDI file; a broken file raises MidiFileError naming it."""
    path = Path(path)
    if not path.exists():
        raise MidiFileError(path, "no such file")
    if path.is_dir():
        raise MidiFileError(path, "is a directory, not a MIDI file")
    return parse_midi_bytes(path.read_bytes(), path)


def parse_midi_bytes(data: bytes, name: str | Path = "<bytes>") -> MidiContent:
    """Parse MIDI file bytes; `name` is what an error message calls them."""
    path = name
    if not data:
        raise MidiFileError(path, "empty file")
    if not data.startswith(b"MThd"):
        raise MidiFileError(path, "not a MIDI file (no MThd header)")
    try:
        mid = mido.MidiFile(file=io.BytesIO(data))
    except (EOFError, OSError, ValueError, KeyError, IndexError, TypeError) as e:
        raise MidiFileError(
            path, f"corrupt or truncated MIDI data ({e or type(e).__name__})"
        ) from None
    if mid.ticks_per_beat <= 0:
        raise MidiFileError(path, "SMPTE time division is not supported")
    return _content(mid)


def _content(mid: mido.MidiFile) -> MidiContent:
    tempo = 500_000  # microseconds per beat until the first set_tempo
    seconds, last_tick = 0.0, 0
    open_notes: dict[tuple[int, int], collections.deque] = collections.defaultdict(
        collections.deque
    )
    notes: list[tuple[float, float, int, int, int]] = []
    pedal: list[tuple[float, int, int]] = []
    programs: dict[int, int] = {}
    tick = 0
    for msg in mido.merge_tracks(mid.tracks):
        tick += msg.time
        seconds += (tick - last_tick) * tempo / (mid.ticks_per_beat * 1e6)
        last_tick = tick
        kind = msg.type
        if kind == "set_tempo":
            tempo = msg.tempo
        elif kind == "note_on" and msg.velocity > 0:
            open_notes[(msg.channel, msg.note)].append((seconds, msg.velocity))
        elif kind == "note_off" or kind == "note_on":
            queue = open_notes.get((msg.channel, msg.note))
            if queue:  # an orphan note-off is ignored
                start, velocity = queue.popleft()
                if seconds > start:  # zero-length notes are dropped
                    notes.append((start, seconds, msg.note, velocity, msg.channel))
        elif kind == "control_change" and msg.control == SUSTAIN_CC:
            pedal.append((seconds, msg.channel, msg.value))
        elif kind == "program_change":
            programs.setdefault(msg.channel, msg.program)
    for (channel, pitch), queue in open_notes.items():  # close notes the file never ends
        for start, velocity in queue:
            if seconds > start:
                notes.append((start, seconds, pitch, velocity, channel))
    note_array = np.array(notes, dtype=NOTE_DTYPE) if notes else empty_notes()
    pedal_array = np.array(pedal, dtype=PEDAL_DTYPE) if pedal else np.zeros(0, PEDAL_DTYPE)
    return MidiContent(sort_notes(note_array), pedal_array, programs)


def apply_sustain(notes: np.ndarray, pedal: np.ndarray) -> np.ndarray:
    """Extend notes held by the sustain pedal (CC64 >= 64), per channel, as note_seq's
    apply_sustain_control_changes: a sustained note lasts until the pedal is released or the
    same pitch is struck again, whichever is first. Drum notes are left as they are."""
    if len(pedal) == 0 or len(notes) == 0:
        return notes
    notes = notes.copy()
    ON, OFF, NOTE_ON, NOTE_OFF = 0, 1, 2, 3  # at equal times pedal changes come first
    events = [(p["time"], ON if p["value"] >= 64 else OFF, int(p["channel"]), -1) for p in pedal]
    for i, note in enumerate(notes):
        if note["channel"] != DRUM_CHANNEL:
            events.append((note["start"], NOTE_ON, int(note["channel"]), i))
            events.append((note["end"], NOTE_OFF, int(note["channel"]), i))
    events.sort(key=lambda e: (e[0], e[1]))  # stable: ties keep note order, like note_seq

    active: dict[int, list[int]] = collections.defaultdict(list)
    held: dict[int, bool] = collections.defaultdict(bool)
    removed = np.zeros(len(notes), bool)
    time = 0.0
    for time, kind, channel, i in events:
        if kind == ON:
            held[channel] = True
        elif kind == OFF:
            held[channel] = False
            still = []
            for j in active[channel]:
                if notes["end"][j] < time:  # was being extended by the pedal
                    notes["end"][j] = time
                else:
                    still.append(j)
            active[channel] = still
        elif kind == NOTE_ON:
            if held[channel]:
                still = []
                for j in active[channel]:
                    if notes["pitch"][j] == notes["pitch"][i]:
                        notes["end"][j] = time
                        removed[j] |= notes["start"][j] == time
                    else:
                        still.append(j)
                active[channel] = still
            active[channel].append(i)
        elif not held[channel] and i in active[channel]:
            active[channel].remove(i)
    for still in active.values():  # pedal never released: end at the last event
        for j in still:
            notes["end"][j] = time
    return sort_notes(notes[~removed])


def load_notes(path: str | Path, *, sustain: bool = True, drums: bool = False) -> np.ndarray:
    """Notes of a MIDI file, pedal applied, drums (channel 10) left out unless asked for."""
    return performed_notes(read_midi(path), sustain=sustain, drums=drums)


def performed_notes(
    content: MidiContent, *, sustain: bool = True, drums: bool = False
) -> np.ndarray:
    """The notes as heard: pedal applied, drums (channel 10) left out unless asked for."""
    notes = content.notes
    if sustain:
        notes = apply_sustain(notes, content.pedal)
    if not drums:
        notes = notes[notes["channel"] != DRUM_CHANNEL]
    return notes


def notes_to_midi(
    notes: np.ndarray,
    *,
    program: int = 0,
    channel: int | None = None,
    bpm: float = 120.0,
    ticks_per_beat: int = 480,
) -> mido.MidiFile:
    """A type-0 MIDI file of the notes. `channel` overrides the notes' own channels."""
    seconds_per_tick = 60.0 / bpm / ticks_per_beat
    channels = notes["channel"] if channel is None else np.full(len(notes), channel)
    events: list[tuple[int, int, mido.Message]] = []
    for note, ch in zip(notes, channels, strict=True):
        ch = int(ch)
        on = round(float(note["start"]) / seconds_per_tick)
        off = max(round(float(note["end"]) / seconds_per_tick), on + 1)
        pitch, vel = int(note["pitch"]), int(note["velocity"])
        events.append((on, 1, mido.Message("note_on", channel=ch, note=pitch, velocity=vel)))
        events.append((off, 0, mido.Message("note_off", channel=ch, note=pitch, velocity=0)))
    events.sort(key=lambda e: (e[0], e[1]))  # at one tick, offs before ons: no cut-off retrigger

    track = mido.MidiTrack()
    track.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm), time=0))
    for ch in sorted({int(c) for c in channels}):
        if ch != DRUM_CHANNEL:
            track.append(mido.Message("program_change", channel=ch, program=program, time=0))
    last = 0
    for tick, _, msg in events:
        track.append(msg.copy(time=tick - last))
        last = tick
    track.append(mido.MetaMessage("end_of_track", time=0))
    mid = mido.MidiFile(type=0, ticks_per_beat=ticks_per_beat)
    mid.tracks.append(track)
    return mid


def write_midi(notes: np.ndarray, path: str | Path, **kwargs) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    notes_to_midi(notes, **kwargs).save(path)
    return path
