"""Knobs on the computer keyboard: each key turns its knob on a running engine (on fake ports,
tests/realtime/helpers.py), and a real terminal (a pty) drives `cadenza live` on JACK."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time

from cadenza.realtime.keys import TerminalKeys
from tests.realtime.helpers import (
    PHRASE,
    FakeRunningEngine,
    feed_phrase,
    has_note_on,
    sounding_after,
    unique,
)


def test_keys_turn_the_knobs(tiny_bundle):
    with FakeRunningEngine(tiny_bundle, temperature=1.0) as running:
        engine, keys = running.engine, TerminalKeys(running.engine.controls)
        for key in "+++":
            keys.press(key)
        assert engine.generator.knobs.temperature == 1.3
        keys.press("-")
        assert engine.generator.knobs.temperature == 1.2
        keys.press("]")
        assert str(engine.config.answer_length) == "3 bars"
        keys.press(">")
        assert engine.mode.phrases.silence_seconds == 0.4
        keys.press("l")
        assert engine.mode.performer.loop
        keys.press("q")
        running.thread.join(timeout=5)
        assert not running.thread.is_alive()


def test_panic_key_ends_the_answer(tiny_bundle):
    with FakeRunningEngine(tiny_bundle, answer_length="20 s") as running:
        output = running.output
        feed_phrase(running.input, PHRASE[:3])
        output.wait_until(has_note_on)
        TerminalKeys(running.engine.controls).press("p")  # ends the notes as it returns
        assert sounding_after(output.messages) == {}
        count = len(output.events)
        time.sleep(0.5)
        assert len(output.events) == count  # nothing more of that answer


def test_cadenza_live_in_a_terminal_quits_on_q(tiny_bundle, jack_server):
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "cadenza.cli", "live", "--bundle", str(tiny_bundle),
         "--port-name", unique("cadenza")],
        stdin=terminal, stdout=terminal, stderr=terminal,
        env={**os.environ, "CADENZA_MIDI_API": "jack"})
    os.close(terminal)
    try:
        shown = b""
        deadline = time.monotonic() + 20
        while b"keys:" not in shown and time.monotonic() < deadline:
            shown += os.read(controller, 4096)
        assert b"keys:" in shown
        os.write(controller, b"+")
        # The status line shows the turned knob at its next refresh (10 s: "never", not a
        # latency target).
        deadline = time.monotonic() + 10
        while b"temp 1.10" not in shown and time.monotonic() < deadline:
            if select.select([controller], [], [], 0.2)[0]:
                shown += os.read(controller, 65536)
        assert b"temp 1.10" in shown
        os.write(controller, b"q")
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
        os.close(controller)
