"""The control surface's controllers given on the command line (cadenza.realtime.controls):
--panic-cc ends every sounding note and lifts the pedal."""

from __future__ import annotations

from cadenza.realtime.config import load_live_config
from tests.realtime.helpers import PHRASE, FakeRunningEngine, feed_phrase, note_ons, wait_for


def test_the_panic_cc_ends_every_sounding_note(tiny_bundle):
    with FakeRunningEngine(tiny_bundle, answer_length="20 s", passthrough=True,
                           **{"cc.panic": 30}) as running:
        engine = running.engine
        feed_phrase(running.input, PHRASE[:3])
        wait_for(lambda: len(note_ons(running.output.events)) > 3 and engine.scheduler.sounding)
        running.input.send([0xB0, 64, 127])  # the pedal down during the answer, passed through
        running.input.send([0xB0, 30, 127])  # panic
        wait_for(lambda: not engine.scheduler.sounding and not engine.mode.performer.busy)
        sent = running.output.messages
    panic_at = max(i for i, m in enumerate(sent) if m[:2] == [0xB0, 123])  # all notes off
    assert [0xB0, 64, 0] in sent[:panic_at + 2]  # the pedal lifted
    assert not engine.scheduler.sounding


def test_the_panic_cc_is_set_by_its_flag():
    assert load_live_config(None, {"cc.panic": 30}).cc.panic == 30
