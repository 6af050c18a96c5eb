"""MIDI files <-> note arrays, with the sustain pedal applied the way note_seq applies it."""

from __future__ import annotations

import collections
from dataclasses import dataclass
from pathlib import Path

import mido
import numpy as np
import symusic

from cadenza.errors import MidiFileError
from cadenza.notes import DRUM_CHANNEL, NOTE_DTYPE, empty_notes, sort_notes

SUSTAIN_CC = 64
# A MIDI file is untrusted data (a primer, a corpus file from the web): what it may make us
# build is bounded here, before any array sized by its times is made. No piece Cadenza reads
# is longer than an hour; a note beyond is a damaged or hostile file.
MAX_MIDI_SECONDS = 3600.0
MAX_MIDI_BYTES = 64 << 20
PEDAL_DTYPE = np.dtype([("time", "f8"), ("channel", "i1"), ("value", "i2")])


@dataclass
class MidiContent:
    """What a file holds that the models use: notes and sustain-pedal changes, in seconds."""

    notes: np.ndarray
    pedal: np.ndarray
    programs: dict[int, int]  # channel (part) -> its General MIDI program


def read_midi(path: str | Path) -> MidiContent:
    """Read a type 0/1 MIDI file; a broken file raises MidiFileError naming it."""
    path = Path(path)
    if not path.exists():
        raise MidiFileError(path, "no such file")
    if path.is_dir():
        raise MidiFileError(path, "is a directory, not a MIDI file")
    if path.stat().st_size > MAX_MIDI_BYTES:
        raise MidiFileError(path, f"is over {MAX_MIDI_BYTES >> 20} MB, not a MIDI file to read")
    return parse_midi_bytes(path.read_bytes(), path)


def parse_score(data: bytes, name: str | Path = "<bytes>") -> symusic.Score:
    """MIDI file bytes parsed by symusic, the header checked first (the one place a MIDI
    file's bytes become a score); MidiFileError naming `name` if they are not a file we read."""
    if not data:
        raise MidiFileError(name, "empty file")
    if len(data) > MAX_MIDI_BYTES:
        raise MidiFileError(name, f"is over {MAX_MIDI_BYTES >> 20} MB, not a MIDI file to read")
    if not data.startswith(b"MThd"):
        raise MidiFileError(name, "not a MIDI file (no MThd header)")
    if len(data) < 14:
        raise MidiFileError(name, "truncated MIDI header")
    if data[12] & 0x80:
        raise MidiFileError(name, "SMPTE time division is not supported")
    if int.from_bytes(data[12:14], "big") == 0:
        raise MidiFileError(name, "the header says 0 ticks per quarter note")
    try:
        score = symusic.Score.from_midi(data)
    except Exception as e:  # symusic raises RuntimeError (and others) for damaged data
        detail = str(e).split(":", 1)[-1].strip() or type(e).__name__
        raise MidiFileError(name, f"corrupt or truncated MIDI data ({detail})") from None
    if score.ticks_per_quarter <= 0:
        raise MidiFileError(name, "the header says 0 ticks per quarter note")
    return score


def parse_midi_bytes(data: bytes, name: str | Path = "<bytes>") -> MidiContent:
    """Parse MIDI file bytes; `name` is what an error message calls them.

    symusic (a C++ parser) reads the file: it is many times faster than a pure-Python
    parser, which matters for corpora of thousands of files. It pairs note-ons and note-offs
    first-in first-out per pitch, as note_seq's decoder does; we then drop zero-length notes
    (notes the file never ends are dropped by symusic).
    """
    content = _content(parse_score(data, name))
    last = max(float(content.notes["end"].max(initial=0.0)),
               float(content.pedal["time"].max(initial=0.0)))
    if not last <= MAX_MIDI_SECONDS:  # NaN too
        raise MidiFileError(name, f"has a note or pedal change at {last:.4g} s, beyond "
                                  f"{MAX_MIDI_SECONDS:g} s (the longest piece read)")
    return content


def _seconds(
    ticks: np.ndarray, tempos: dict[str, np.ndarray], ticks_per_quarter: int
) -> np.ndarray:
    """Ticks -> seconds through the tempo map (float64, unlike symusic's float32 seconds)."""
    times, mspq = tempos["time"].astype(np.int64), tempos["mspq"].astype(np.float64)
    if len(times) == 0 or times[0] > 0:  # 120 bpm until the first tempo event
        times, mspq = np.concatenate([[0], times]), np.concatenate([[500_000.0], mspq])
    scale = mspq / (ticks_per_quarter * 1e6)  # seconds per tick in each tempo segment
    segment_start = np.concatenate([[0.0], np.cumsum(np.diff(times) * scale[:-1])])
    index = np.searchsorted(times, ticks, side="right") - 1
    return segment_start[index] + (ticks - times[index]) * scale[index]


def _content(score: symusic.Score) -> MidiContent:
    """Notes and pedal of every part. A part (symusic splits tracks by channel) gets its own
    `channel` number, drums 9, so that the pedal of one part never holds another's notes."""
    tempos = score.tempos.numpy()
    notes, pedals, programs = [], [], {}
    melodic = 0
    for track in score.tracks:
        if track.is_drum:
            part = DRUM_CHANNEL
        else:
            part = min(melodic if melodic < DRUM_CHANNEL else melodic + 1, 15)
            melodic += 1
        programs.setdefault(part, int(track.program))
        arrays = track.notes.numpy()
        keep = arrays["duration"] > 0  # zero-length notes are dropped
        start = arrays["time"][keep].astype(np.int64)
        part_notes = np.zeros(int(keep.sum()), dtype=NOTE_DTYPE)
        part_notes["start"] = _seconds(start, tempos, score.ticks_per_quarter)
        part_notes["end"] = _seconds(
            start + arrays["duration"][keep], tempos, score.ticks_per_quarter
        )
        part_notes["pitch"] = arrays["pitch"][keep]
        part_notes["velocity"] = arrays["velocity"][keep]
        part_notes["channel"] = part
        notes.append(part_notes)
        if len(track.controls):
            controls = track.controls.numpy()
            sustain = controls["number"] == SUSTAIN_CC
            part_pedal = np.zeros(int(sustain.sum()), dtype=PEDAL_DTYPE)
            part_pedal["time"] = _seconds(
                controls["time"][sustain].astype(np.int64), tempos, score.ticks_per_quarter
            )
            part_pedal["channel"] = part
            part_pedal["value"] = controls["value"][sustain]
            pedals.append(part_pedal)
    note_array = sort_notes(np.concatenate(notes)) if notes else empty_notes()
    pedal_array = np.concatenate(pedals) if pedals else np.zeros(0, PEDAL_DTYPE)
    return MidiContent(note_array, np.sort(pedal_array, order="time", kind="stable"), programs)


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


def note_messages(
    notes: np.ndarray, channels: np.ndarray, seconds_per_tick: float
) -> list[tuple[int, mido.Message]]:
    """(absolute tick, note_on/note_off) of each note on its channel, in time order; a note
    lasts at least a tick, and at one tick offs come before ons (no cut-off retrigger)."""
    events: list[tuple[int, int, mido.Message]] = []
    for note, ch in zip(notes, channels, strict=True):
        ch = int(ch)
        on = round(float(note["start"]) / seconds_per_tick)
        off = max(round(float(note["end"]) / seconds_per_tick), on + 1)
        pitch, vel = int(note["pitch"]), int(note["velocity"])
        events.append((on, 1, mido.Message("note_on", channel=ch, note=pitch, velocity=vel)))
        events.append((off, 0, mido.Message("note_off", channel=ch, note=pitch, velocity=0)))
    events.sort(key=lambda e: (e[0], e[1]))
    return [(tick, msg) for tick, _, msg in events]


def notes_to_midi(
    notes: np.ndarray,
    *,
    program: int = 0,
    channel: int | None = None,
    bpm: float = 120.0,
    ticks_per_beat: int = 480,
) -> mido.MidiFile:
    """A type-0 MIDI file of the notes. `channel` overrides the notes' own channels."""
    channels = notes["channel"] if channel is None else np.full(len(notes), channel)
    track = mido.MidiTrack()
    track.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm), time=0))
    for ch in sorted({int(c) for c in channels}):
        if ch != DRUM_CHANNEL:
            track.append(mido.Message("program_change", channel=ch, program=program, time=0))
    last = 0
    for tick, msg in note_messages(notes, channels, 60.0 / bpm / ticks_per_beat):
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
