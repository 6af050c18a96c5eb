"""The tests' own judge of what JACK lost: a difference between what Cadenza sent and what a
recorder got passes only where jackd's log says a cycle was missed."""

from __future__ import annotations

import pytest

from tests.realtime.helpers import JackLateCycles, assert_all_ended, assert_arrived_as_sent

SENT = [[0x90, 60, 90], [0x80, 60, 0], [0x90, 62, 90], [0x80, 62, 0]]
MISSED = "JackEngine::XRun: client = cadenza-test was not finished, state = Triggered\n"


@pytest.fixture
def log(tmp_path):
    path = tmp_path / "jackd.log"
    path.write_text("JACK server starting in non-realtime mode\n" + MISSED)  # before the test
    return path


def test_what_arrived_as_sent_passes(log):
    assert_arrived_as_sent(SENT, SENT, JackLateCycles(log))


def test_a_loss_fails_when_jack_missed_no_cycle(log):
    with pytest.raises(AssertionError, match="jackd missed 0 cycles"):
        assert_arrived_as_sent(SENT, SENT[:1] + SENT[2:], JackLateCycles(log))


def test_a_loss_or_a_repeat_passes_where_jack_missed_a_cycle(log):
    late = JackLateCycles(log)
    with open(log, "a") as text:
        text.write(MISSED)
    assert_arrived_as_sent(SENT, SENT[:1] + SENT[2:], late)
    assert_arrived_as_sent(SENT, SENT[:2] + SENT[1:], late)


def test_more_losses_than_missed_cycles_fail(log):
    late = JackLateCycles(log)
    with open(log, "a") as text:
        text.write(MISSED)
    with pytest.raises(AssertionError, match="differ in 2 places"):
        assert_arrived_as_sent(SENT, [SENT[1], SENT[3]], late)


def test_a_message_never_sent_fails_even_where_jack_missed_cycles(log):
    late = JackLateCycles(log)
    with open(log, "a") as text:
        text.write(MISSED * 3)
    with pytest.raises(AssertionError, match="never sent near it"):
        assert_arrived_as_sent(SENT, [*SENT, [0x90, 99, 1]], late)


def test_a_note_left_sounding_is_jacks_only_where_it_missed_a_cycle(log):
    with pytest.raises(AssertionError, match="still sounding"):
        assert_all_ended(SENT[:3], JackLateCycles(log))
    late = JackLateCycles(log)
    with open(log, "a") as text:
        text.write(MISSED)
    assert_all_ended(SENT[:3], late)
    with pytest.raises(AssertionError, match="still sounding"):
        assert_all_ended(SENT[:1] + SENT[2:3], late)  # two left, one missed cycle
