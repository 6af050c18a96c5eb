"""`cadenza demo`: the live engine for real, on a machine with no MIDI hardware.

A simulated player plays a bundled phrase into `cadenza in` through a real port, Cadenza
answers on `cadenza out`, and the demo records what came out: a MIDI file, a WAV through a
General MIDI SoundFont and a piano roll, and prints the latency figures. Where no MIDI
system runs, it starts a JACK server with the dummy backend for the while.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np

from cadenza.midi import read_midi, write_midi
from cadenza.midi_status import (
    CONTROL_CHANGE,
    NOTE_OFF,
    NOTE_ON,
    SUSTAIN_PEDAL,
    channel_of,
    ends_note,
    starts_note,
)
from cadenza.notes import empty_notes, make_notes, sort_notes
from cadenza.realtime.config import load_live_config
from cadenza.realtime.jack import start_dummy_jack, stop_jack
from cadenza.realtime.live import open_engine
from cadenza.realtime.ports import PortError, choose_api, open_input, open_output

PRIMERS = Path(__file__).parent / "data" / "primers"


def phrase_messages(primer: Path) -> list[tuple[float, list[int]]]:
    """The primer as a player would send it: note and pedal messages with times."""
    content = read_midi(primer)
    events = [(n["start"], 2, [NOTE_ON, int(n["pitch"]), int(n["velocity"])])
              for n in content.notes]
    events += [(n["end"], 1, [NOTE_OFF, int(n["pitch"]), 0]) for n in content.notes]
    events += [(p["time"], 0, [CONTROL_CHANGE, SUSTAIN_PEDAL, int(p["value"])])
               for p in content.pedal]
    return [(t, m) for t, _, m in sorted(events, key=lambda e: (e[0], e[1]))]


def notes_of(events: list[tuple[float, list[int]]], origin: float, channel: int) -> np.ndarray:
    """What a list of timestamped messages played, as notes timed from `origin` and put on
    `channel` (the pedal not applied; a key struck again ends its sounding note first, and a
    note still sounding at the end lasts to the last message)."""
    held: dict[tuple[int | None, int], tuple[float, int]] = {}  # (channel, pitch) -> on
    played: list[tuple[float, float, int, int]] = []
    for t, message in events:
        if not (starts_note(message) or ends_note(message)):
            continue
        key = (channel_of(message), message[1])
        if key in held:
            start, velocity = held.pop(key)
            played.append((start, t, message[1], velocity))
        if starts_note(message):
            held[key] = (t, message[2])
    last = max((t for t, _ in events), default=origin)
    played += [(start, last, pitch, velocity) for (_, pitch), (start, velocity) in held.items()]
    if not played:
        return empty_notes()
    start, end, pitch, velocity = (np.array(column) for column in zip(*played, strict=True))
    return make_notes(start - origin, end - origin, pitch, velocity, channel)


def run_demo(
    out_dir: Path,
    primer: Path,
    *,
    bundle: str | None = None,
    seed: int = 7,
    silence: float = 0.8,
    soundfont: str | None = None,
) -> None:
    render = renderable(soundfont)  # said before the performance, not after it
    if render is not True:
        print(f"(the recording will be MIDI only: {render})")
    server = None
    try:
        choose_api()
    except PortError:
        print("no MIDI system running: starting a JACK server with the dummy backend")
        server = start_dummy_jack()
    try:
        _perform(out_dir, primer, bundle, seed, silence,
                 render=render is True, soundfont=soundfont)
    finally:
        stop_jack(server)


def renderable(soundfont: str | None) -> bool | str:
    """True when the WAV and the piano roll can be made, else why not (one line). A
    --soundfont that is not there is an error: a typo is not to be passed over."""
    from cadenza.errors import CadenzaError
    from cadenza.extras import require
    from cadenza.render import find_soundfont

    if soundfont:
        find_soundfont(soundfont)
    try:
        require("the demo's WAV and piano roll", "tinysoundfont", "matplotlib")
        find_soundfont(soundfont)
    except CadenzaError as e:
        return str(e)
    return True


def _perform(out_dir: Path, primer: Path, bundle: str | None, seed: int, silence: float, *,
             render: bool, soundfont: str | None) -> None:
    config = load_live_config(
        None, {"quiet": True, "seed": seed, "silence_seconds": silence, "bundle": bundle}
    )
    engine = open_engine(config)
    thread = threading.Thread(target=engine.run, name="cadenza-engine", daemon=True)
    thread.start()
    player = open_output(engine.midi_in.name, virtual_name="player", client_name="demo-player")
    recorder = open_input(
        engine.midi_out.name, virtual_name="recorder", client_name="demo-recorder"
    )
    try:
        messages = phrase_messages(primer)
        print(
            f"player: playing {primer.name} ({messages[-1][0]:.1f} s) into '{engine.midi_in.name}'"
        )
        origin = time.perf_counter() + 0.2
        played = []
        for t, message in messages:
            while time.perf_counter() < origin + t:
                time.sleep(0.0005)
            played.append((time.perf_counter(), message))
            player.send(message)
        call_end = played[-1][0]
        print(
            f"cadenza: listening for {silence} s of silence, then answering on "
            f"'{engine.midi_out.name}'"
        )
        time.sleep(silence + (call_end - origin) + 1.5)  # the answer lasts as long as the call
    finally:
        engine.stop()
        thread.join(timeout=10)
        time.sleep(0.2)
        heard = recorder.drain()
        player.close()
        recorder.close()
        engine.close_ports()

    answer = [(t, list(m)) for t, m in heard]
    call_notes = notes_of(played, origin, channel=0)
    answer_notes = notes_of(answer, origin, channel=1)
    notes = sort_notes(np.concatenate([call_notes, answer_notes]))
    out_dir.mkdir(parents=True, exist_ok=True)
    midi = write_midi(notes, out_dir / "live.mid")
    print(f"recorded: {len(call_notes)} notes played, {len(answer_notes)} answered -> {midi}")
    split = float(call_notes["end"].max()) if len(call_notes) else None
    if render:  # else renderable() said why not, before the performance
        from cadenza.render import plot_piano_roll, render_wav

        render_wav(notes, out_dir / "live.wav", soundfont=soundfont)
        plot_piano_roll(
            notes,
            out_dir / "live.png",
            split_at=split,
            title=f"{engine.generator.bundle.name}: the call | Cadenza's answer",
        )
        print(f"rendered: {out_dir / 'live.wav'}, {out_dir / 'live.png'}")
    _report(engine, answer)


def _report(engine, answer: list[tuple[float, list[int]]]) -> None:
    if engine.stats.error:
        print(f"engine: {engine.stats.error}")
    ons = [t for t, m in answer if starts_note(m)]
    lateness = engine.scheduler.lateness_stats()
    print("latency:")
    if engine.stats.detected_at and ons:
        first = (ons[0] - engine.stats.detected_at[0]) * 1e3
        print(
            f"  phrase end detected -> first note-on of the answer at the recorder: {first:.2f} ms"
        )
    else:
        print("  no answer was heard")
    if lateness["count"]:
        print(
            f"  scheduler lateness over {lateness['count']} messages: p50 "
            f"{lateness['p50'] * 1e3:.3f} ms, p99 {lateness['p99'] * 1e3:.3f} ms, "
            f"max {lateness['max'] * 1e3:.3f} ms"
        )
