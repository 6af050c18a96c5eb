"""The input's guard against messages delivered twice (realtime/redelivery.py)."""

from __future__ import annotations

from cadenza.realtime.redelivery import RedeliveryFilter

ON, OFF, CLOCK = bytes([0x90, 60, 90]), bytes([0x80, 60, 0]), bytes([0xF8])


def test_a_note_on_repeated_within_a_millisecond_is_dropped_and_counted():
    guard = RedeliveryFilter()
    assert not guard.is_repeat(1.0, ON)
    assert guard.is_repeat(1.00004, ON)
    assert guard.dropped == 1


def test_a_cycle_delivered_again_is_dropped_message_by_message():
    guard = RedeliveryFilter()
    cycle = [ON, bytes([0x90, 64, 80]), bytes([0xB0, 64, 127])]  # a chord, the pedal down
    first = [guard.is_repeat(2.0 + k * 1e-5, m) for k, m in enumerate(cycle)]
    again = [guard.is_repeat(2.0001 + k * 1e-5, m) for k, m in enumerate(cycle)]
    assert first == [False] * 3 and again == [True] * 3


def test_a_fast_repeated_note_delivered_at_once_keeps_its_last_note_off():
    """A stalled writer (a late JACK client, a USB packet) hands over a repeated note in
    one go: note-off, note-on, note-off of one key. The second note-off equals the first
    but ends the key struck between them: dropped, the key would stay down for good (the
    phrase never ends, a passed-through note never stops)."""
    guard = RedeliveryFilter()
    batch = [bytes([0x90, 66, 99]), OFF66 := bytes([0x80, 66, 0]), bytes([0x90, 66, 97]), OFF66]
    assert [guard.is_repeat(3.0 + k * 1e-6, m) for k, m in enumerate(batch)] == [False] * 4
    assert guard.dropped == 0


def test_a_cycle_of_one_keys_end_and_start_delivered_again_leaves_the_key_as_it_was():
    """A redelivered [note-off, note-on] of one key cannot be told from a fast repeat: it is
    played (a re-strike), and the key ends down once, as after the first delivery."""
    guard = RedeliveryFilter()
    cycle = [OFF, ON]  # a repeated note: the end of one, the start of the next
    heard = [m for k, m in enumerate(cycle * 2) if not guard.is_repeat(2.0 + k * 1e-5, m)]
    assert heard[-1] == ON and heard.count(ON) - heard.count(OFF) == 0


def test_the_same_key_struck_again_later_is_played():
    guard = RedeliveryFilter()
    assert not guard.is_repeat(1.0, ON)
    assert not guard.is_repeat(1.0005, OFF)
    assert not guard.is_repeat(1.05, ON)  # 50 ms on: a fast repeat, not a redelivery


def test_a_different_velocity_or_channel_is_another_message():
    guard = RedeliveryFilter()
    assert not guard.is_repeat(1.0, ON)
    assert not guard.is_repeat(1.0, bytes([0x90, 60, 91]))
    assert not guard.is_repeat(1.0, bytes([0x91, 60, 90]))


def test_clock_pulses_are_left_to_the_clock_follower():
    """A stall delivers several real pulses at once: only the follower can tell them apart."""
    guard = RedeliveryFilter()
    assert [guard.is_repeat(1.0, CLOCK) for _ in range(4)] == [False] * 4


def test_a_flood_is_remembered_only_in_part():
    """Memory stays bounded under a flood inside the window: the oldest are forgotten."""
    guard = RedeliveryFilter()
    flood = [bytes([0xB0, k, value]) for value in range(2) for k in range(128)]
    for k, message in enumerate(flood):
        assert not guard.is_repeat(1.0 + k * 1e-8, message)
    assert not guard.is_repeat(1.0 + 1e-5, flood[0])  # forgotten: played again
    assert guard.is_repeat(1.0 + 1e-5, flood[-1])
