"""A live set as a type-1 MIDI file: a tempo track (time signature and tempo map), then a named
track per voice (the player, the answers or each backing part), each message placed by the
perf_counter time it was played or sent.

Times become ticks through the tempo map as recorded so far, from an origin on a bar line of
the engine's grid: a DAW that imports the file at its tempo finds the notes on its bars. The
file is built again from the tracks whenever it is written, each time with a note-off for every
note still sounding (and the pedal lifted) at the end: a file written mid-set is a whole one.
mido encodes it; nothing here reads a clock or touches a thread (session_record.py does).
"""

from __future__ import annotations

from collections.abc import Sequence

import mido

from cadenza.midi_status import (
    CONTROL_CHANGE,
    NOTE_OFF,
    SUSTAIN_PEDAL,
    ends_note,
    is_channel_message,
)
from cadenza.realtime.note_state import NoteState

TICKS_PER_BEAT = 960  # half a millisecond at 120 bpm: finer than a JACK or USB MIDI cycle
TEMPO_TRACK = "tempo"


class TempoMap:
    """perf_counter seconds to ticks of the file, through the tempo changes recorded so far."""

    def __init__(self, origin: float, bpm: float):
        self.segments: list[tuple[float, float, float]] = [(origin, 0.0, bpm)]  # (t, tick, bpm)

    @property
    def bpm(self) -> float:
        return self.segments[-1][2]

    def tick(self, t: float) -> int:
        segment = self.segments[0]
        for candidate in reversed(self.segments):
            if t >= candidate[0]:
                segment = candidate
                break
        start, tick, bpm = segment
        return max(0, round(tick + (t - start) * bpm / 60.0 * TICKS_PER_BEAT))

    def change(self, t: float, bpm: float) -> int:
        """A new tempo from `t` on (not before the last change); its tick."""
        start, tick, old = self.segments[-1]
        t = max(t, start)
        at = tick + (t - start) * old / 60.0 * TICKS_PER_BEAT
        self.segments.append((t, at, bpm))
        return round(at)


class SessionFile:
    """The tracks of one take: `names` are the voices' track names, after the tempo track."""

    def __init__(self, names: Sequence[str], *, origin: float, bpm: float, beats_per_bar: int):
        self.names = list(names)
        self.tempo = TempoMap(origin, bpm)
        conductor = mido.MidiTrack([
            mido.MetaMessage("track_name", name=TEMPO_TRACK, time=0),
            mido.MetaMessage("time_signature", numerator=beats_per_bar, denominator=4, time=0),
            mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm), time=0),
        ])
        self.tracks = [conductor] + [mido.MidiTrack([mido.MetaMessage("track_name", name=name,
                                                                      time=0)])
                                     for name in self.names]
        self._ticks = [0] * len(self.tracks)  # the absolute tick of each track's last message
        self._sounding = [NoteState() for _ in self.tracks]
        self.messages = 0

    def _append(self, track: int, tick: int, message: mido.Message | mido.MetaMessage) -> None:
        # Input from several ports may come a few microseconds out of order: never backwards.
        tick = max(tick, self._ticks[track])
        message.time = tick - self._ticks[track]
        self._ticks[track] = tick
        self.tracks[track].append(message)

    def add(self, voice: int, t: float, message: Sequence[int]) -> None:
        """A channel message of voice `voice` (an index into `names`) at perf_counter `t`.
        A note-off of a note this voice is not sounding is left out (a panic ends every
        channel's notes; the file ends only its own)."""
        track = voice + 1
        if not is_channel_message(message):
            return
        sounding = self._sounding[track]
        if ends_note(message) and not sounding.ends_something(message):
            return
        try:
            encoded = mido.Message.from_bytes(list(message))
        except ValueError:  # not a whole MIDI message: nothing to write
            return
        sounding.apply(message)
        self._append(track, self.tempo.tick(t), encoded)
        self.messages += 1

    def set_tempo(self, t: float, bpm: float) -> None:
        tick = self.tempo.change(t, bpm)
        self._append(0, tick, mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm)))

    def midi_file(self, end: float) -> mido.MidiFile:
        """The file as it stands at perf_counter `end`: every note still sounding ends there,
        every pedal down is lifted, every track is closed."""
        end_tick = self.tempo.tick(end)
        out = mido.MidiFile(type=1, ticks_per_beat=TICKS_PER_BEAT)
        for track, sounding, last in zip(self.tracks, self._sounding, self._ticks, strict=True):
            closing = [[NOTE_OFF | channel, pitch, 0]
                       for (channel, pitch), count in sorted(sounding.notes.items())
                       for _ in range(count)]
            closing += [[CONTROL_CHANGE | channel, SUSTAIN_PEDAL, 0]
                        for channel in sorted(sounding.pedals)]
            copy = mido.MidiTrack(track)
            delay = max(0, end_tick - last)
            for message in closing:
                copy.append(mido.Message.from_bytes(message, time=delay))
                delay = 0
            copy.append(mido.MetaMessage("end_of_track", time=delay))
            out.tracks.append(copy)
        return out
