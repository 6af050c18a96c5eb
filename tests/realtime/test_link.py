"""`cadenza live --link`: the grid of an Ableton Link session, through the real binding
(LinkPython-extern, installed by the `dev` extra) and a second Link peer in a child process.

Link peers find each other by UDP multicast; on this machine they do so on the loopback in
about a second. Where multicast is blocked, the peer tests skip and say so; the local test
still checks the mapping against our own Link session.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from cadenza.errors import ConfigError
from cadenza.realtime.config import load_live_config
from cadenza.realtime.link import LinkFollower
from tests.realtime.helpers import PHRASE, FakeRunningEngine, play_phrase, wait_for

needs_link = pytest.mark.skipif(
    importlib.util.find_spec("link") is None, reason="the Link binding: pip install -e '.[link]'"
)

PEER_BPM = 100.0
DISCOVERY_TIMEOUT = 10.0  # seconds for two Link peers to meet: "never", not a speed target
BEAT_TOLERANCE = 0.002  # seconds: beats line up to 2 ms

# A second Link peer: once it sees another peer it sets the session tempo, then prints what
# its own session says, as "perf_counter_seconds beat" lines, every 20 ms until stdin closes.
# Its beat comes from Link's clock read between two perf_counter reads (CLOCK_MONOTONIC, the
# same clock in both processes), the midpoint stamping it.
# A child peer waits for us to join (argv[2] seconds), else says "alone" and leaves.
JOIN = """
deadline = time.monotonic() + float(sys.argv[2])
while peer.numPeers() == 0:
    if time.monotonic() > deadline:
        print("alone", flush=True)
        sys.exit(0)
    time.sleep(0.01)
"""
PEER_CHILD = """
import sys, threading, time, link
bpm = float(sys.argv[1])
peer = link.Link(bpm)
peer.enabled = True
""" + JOIN + """clock = peer.clock()
state = peer.captureSessionState()
state.setTempo(bpm, clock.micros())
peer.commitSessionState(state)
print("joined", flush=True)
quit_requested = threading.Event()
threading.Thread(target=lambda: (sys.stdin.readline(), quit_requested.set()), daemon=True).start()
while not quit_requested.wait(0.02):
    before = time.perf_counter()
    micros = clock.micros()
    after = time.perf_counter()
    beat = peer.captureSessionState().beatAtTime(micros, 4)
    print(repr((before + after) / 2), repr(beat), flush=True)
peer.enabled = False
"""


class LinkPeer:
    """The child peer; `samples` fills with (perf_counter, beat) as they come."""

    def __init__(self) -> None:
        self.child = subprocess.Popen(
            [sys.executable, "-c", PEER_CHILD, str(PEER_BPM), str(DISCOVERY_TIMEOUT)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.samples: list[tuple[float, float]] = []
        self.joined = threading.Event()
        self.alone = False
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.child.stdout:
            words = line.split()
            if words == ["alone"]:
                self.alone = True
            elif words == ["joined"]:
                self.joined.set()
            else:
                self.samples.append((float(words[0]), float(words[1])))
        self.joined.set()  # the child ended: nobody waits for nothing

    def wait_joined(self) -> None:
        self.joined.wait(DISCOVERY_TIMEOUT + 5)
        if self.alone:
            pytest.skip("Link peers did not find each other: UDP multicast is blocked here")
        assert self.joined.is_set() and self.child.poll() is None, "the Link peer failed"

    def samples_after(self, t: float, count: int = 10) -> list[tuple[float, float]]:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            fresh = [s for s in self.samples if s[0] > t]
            if len(fresh) >= count:
                return fresh[:count]
            time.sleep(0.02)
        raise AssertionError(f"the Link peer sent {len(fresh)} of {count} samples")

    def close(self) -> None:
        try:
            self.child.stdin.write("quit\n")
            self.child.stdin.flush()
            self.child.wait(5)
        except (BrokenPipeError, subprocess.TimeoutExpired):
            self.child.kill()
            self.child.wait()
        self._reader.join(5)


@pytest.fixture
def link_peer() -> Iterator[LinkPeer]:
    peer = LinkPeer()
    yield peer
    peer.close()


def off_the_bar(grid, t: float, peer_beat: float) -> float:
    """Seconds between the grid's bar phase and the peer's at time `t` (Link shares the phase
    within a quantum, here a bar of 4 beats; each peer numbers its beats its own way)."""
    diff = (grid.beat_at(t) - peer_beat) % grid.beats_per_bar
    return min(diff, grid.beats_per_bar - diff) * grid.seconds_per_beat


def wait_for_tempo(grid_of, bpm: float) -> None:
    deadline = time.monotonic() + 5
    while abs(grid_of().bpm - bpm) > 1e-6 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert grid_of().bpm == pytest.approx(bpm), f"the grid stayed at {grid_of().bpm} BPM"


@needs_link
def test_the_grid_takes_a_link_peers_tempo_and_bar_phase(link_peer):
    follower = LinkFollower(120.0, 4)  # our own tempo, until the session's wins
    try:
        link_peer.wait_joined()
        wait_for_tempo(follower.grid, PEER_BPM)
        samples = link_peer.samples_after(time.perf_counter())
        grid = follower.grid()
    finally:
        follower.close()
    assert max(off_the_bar(grid, t, beat) for t, beat in samples) < BEAT_TOLERANCE


@needs_link
def test_the_grid_is_our_own_link_sessions():
    """No peer needed: the grid against our Link instance's own session state, read through
    Link's clock (so this holds where multicast is blocked too)."""
    follower = LinkFollower(90.0, 3)
    try:
        grid = follower.grid()
        state = follower._link.captureSessionState()
        before = time.perf_counter()
        micros = follower._clock.micros()
        after = time.perf_counter()
    finally:
        follower.close()
    # The tempo is the session's: 90 alone, another test run's peer may have set another.
    assert grid.bpm == state.tempo() and grid.beats_per_bar == 3
    assert off_the_bar(grid, (before + after) / 2, state.beatAtTime(micros, 3)) < BEAT_TOLERANCE


@needs_link
def test_answers_start_on_the_link_sessions_beats(tiny_bundle, link_peer):
    # The engine on fake ports: what is checked is where it puts the answer on Link's grid
    # (its stats), which no MIDI transport changes.
    with FakeRunningEngine(tiny_bundle, link=True, bpm=120.0, quantize_answer_to="beat",
                           answer_length="1 s") as running:
        link_peer.wait_joined()
        wait_for_tempo(running.engine.current_grid, PEER_BPM)
        play_phrase(running.input, PHRASE[:4])
        deadline = time.monotonic() + 5
        while running.engine.stats.answers == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        stats = running.engine.stats
        assert stats.answers >= 1
        answer_start = stats.detected_at[0] + stats.detect_to_start[0]
    # On a beat of the peer's, to 2 ms: the peer's beat at the answer start is a whole number.
    (t, beat), *_ = link_peer.samples_after(answer_start - 0.5, count=1)
    peer_beat = beat + (answer_start - t) * PEER_BPM / 60.0
    off_beat = abs(peer_beat - round(peer_beat)) * 60.0 / PEER_BPM
    assert off_beat < BEAT_TOLERANCE


def test_link_with_midi_clock_follow_is_one_line():
    with pytest.raises(ConfigError, match="follow_clock: cannot be used with link"):
        load_live_config(None, {"link": True, "follow_clock": True})


def test_link_without_the_binding_is_one_line_naming_the_package(tmp_path):
    # "Not installed", honestly: a `link` module first on the path that fails to import, as
    # Python's own would; nothing of the binding's behaviour is imitated.
    (tmp_path / "link.py").write_text("raise ImportError('No module named link')\n")
    result = subprocess.run(
        [sys.executable, "-m", "cadenza.cli", "live", "--link", "--quiet"],
        capture_output=True, text=True, timeout=60,
        env={**os.environ, "PYTHONPATH": str(tmp_path)})
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "LinkPython-extern" in lines[0], result.stderr


# A Link peer that shares its transport: it starts or stops the session at each line of stdin
# ("start" / "stop") and says "done" once committed.
TRANSPORT_CHILD = """
import sys, time, link
peer = link.Link(float(sys.argv[1]))
peer.startStopSyncEnabled = True
peer.enabled = True
""" + JOIN + """print("joined", flush=True)
for line in sys.stdin:
    state = peer.captureAppSessionState()
    state.setIsPlaying(line.strip() == "start", peer.clock().micros())
    peer.commitAppSessionState(state)
    print("done", flush=True)
peer.enabled = False
"""


@needs_link
def test_the_backing_follows_link_start_and_stop(tiny_backing_bundle):
    child = subprocess.Popen([sys.executable, "-c", TRANSPORT_CHILD, str(PEER_BPM),
                              str(DISCOVERY_TIMEOUT)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def transport(command: str) -> None:
        child.stdin.write(command + "\n")
        child.stdin.flush()
        assert child.stdout.readline().strip() == "done"

    try:
        with FakeRunningEngine(tiny_backing_bundle, mode="backing", link=True, bpm=120.0,
                               density=3.0) as running:
            if child.stdout.readline().strip() != "joined":
                pytest.skip("Link peers did not find each other: UDP multicast is blocked here")
            engine, backing = running.engine, running.engine.mode.backing
            wait_for(lambda: backing.notes_sent > 0)  # a session nobody started: it plays
            transport("start")
            wait_for(lambda: engine.timeline.link.playing)
            time.sleep(0.2)  # the control loop sees it (Link's state is read every 50 ms)
            transport("stop")
            wait_for(lambda: not backing.running)  # the peer's Stop
            wait_for(lambda: not engine.scheduler.sounding)  # every backing note ended
            sent = backing.notes_sent
            transport("start")
            wait_for(lambda: backing.running and backing.notes_sent > sent)  # and its Start
    finally:
        child.stdin.close()
        child.wait(5)
