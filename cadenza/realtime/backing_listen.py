"""The backing loop's listening steps: listen, then play.

Listen, then play (a bundle whose frames put the player first, `generator.listens`). Half a step
before step n sounds, the loop opens its frame (one model step, ahead of time). If the model
finds a player's note-on on step n likely (a beat of the melody), the loop waits for the
player: the first note-on that comes after that point is the player's note of step n, and the
loop hears it, generates step n's backing and sends it at once (early notes: at the grid point;
late ones: a few milliseconds after the note, which a listener hears as together). A step on
which the player then plays nothing waits `listen` seconds past its grid point at most, then
plays with what it heard. A step the player is unlikely to start a note on is played at once,
on its grid point. The grid sets every deadline; only sends wait for the player.
"""

from __future__ import annotations

import math
import threading

from cadenza.realtime.backing_types import Anticipated, BackingGenerator, Change, Note
from cadenza.realtime.player_notes import PlayerNotes

LATE_MARGIN = 0.01  # seconds: a step due sooner than this when prepared is played as a rest
# Listening, a step waits for the player only if the model gives the player's playing on it
# (a note-off or note-on) at least this probability; others play on the grid point, planned
# half a step ahead.
LISTEN_ABOVE = 0.1
# Listening, while a step waits for the player, its backing is computed ahead for the player's
# likeliest notes (the model's guesses), as many as there is time for before its grid point, at
# most ANTICIPATED: a foreseen note gets its backing with no model work. A guess takes a few ms
# of model work (GUESS_SECONDS, measured on 2 cores with JACK running, rounded up); one is
# begun only if it ends before the grid point, where the player's note is due.
ANTICIPATED = 8
GUESS_SECONDS = 0.012


class ListenThenPlay:
    """BackingLoop's steps that wait for the player's note (a part of BackingLoop, in a module
    of its own to be read in one sitting: it works on the loop's state and helpers, _sounding,
    _replayed, _hear, _send and _finish)."""

    generator: BackingGenerator
    lock: threading.Lock
    listen: float | None
    listen_above: float
    listened: int
    heard_in_time: int
    foreseen: int
    rests: int
    _player: PlayerNotes
    # The step opened and waiting for the player (deadline, position, the backing sounding
    # as it opened, when it opened: the player's note-ons after count), and its backing
    # computed ahead for the likeliest notes.
    _waiting: tuple[float, int, frozenset[Note] | None, float] | None
    _anticipation: Anticipated | None

    def _listen(self, now: float, steps_per_bar: int) -> float | None:
        """A step waits for the player: when it is next due, or None once it has played."""
        until = self._waiting[0] + (self.listen or 0.0)
        if now < until and not self._heard_onset():
            guesses = self._anticipation
            if guesses and guesses.pending and now + GUESS_SECONDS < self._waiting[0]:
                with self.lock:
                    guesses.step()
                return now  # due at once: the player's note first, then the next guess
            return until
        self._play_waiting(now, steps_per_bar)
        return None

    def _open_step(self, deadline: float, position: int, now: float, steps_per_bar: int) -> None:
        """Listening: open the step's frame ahead of time and wait for the player; a replayed
        step is played at once (the loop does not listen)."""
        sounding = self._sounding() if position == 0 else None
        forced = self._replayed(position, sounding)
        self.generator.open_step(position)
        if forced is None and self.generator.player_probability() >= self.listen_above:
            self._waiting = (deadline, position, sounding, now)
            self._anticipation = self.generator.anticipate(ANTICIPATED)
            self.listened += 1
            return
        # Replayed, or a step the player is unlikely to start a note on: planned now, played
        # on the grid point (a note the player does start on it is heard on the next step).
        self._hear(now)
        self._finish(deadline, position, sounding, self._play(deadline, forced), steps_per_bar)

    def _heard_onset(self) -> bool:
        """A note-on came in since the waiting step opened: the player's note of it."""
        opened = self._waiting[3] if self._waiting else math.inf
        return self._player.struck_since(opened)

    def _play_waiting(self, now: float, steps_per_bar: int) -> None:
        """Hear what the player played and play the waiting step now (as a rest if the machine
        stalled far past it: nothing sounds that late)."""
        deadline, position, sounding, _ = self._waiting
        with self.lock:
            self.heard_in_time += self._heard_onset()
            anticipation, self._waiting, self._anticipation = self._anticipation, None, None
            offs, ons = self._player.take(math.inf)
            late = now > deadline + (self.listen or 0.0) + LATE_MARGIN
            foreseen = None if late or anticipation is None else anticipation.take(offs, ons)
            if foreseen is not None:
                self._send(deadline, foreseen)
                self.foreseen += 1
                changes = foreseen
            else:
                (anticipation or self.generator).hear(offs, ons)
                changes = self._play(deadline, [] if late else None)
            self.rests += late
            self._finish(deadline, position, sounding, changes, steps_per_bar)

    def _play(self, deadline: float, forced: list[Change] | None) -> list[Change]:
        """Play the open step, each change sent the moment it is chosen (the first note-on
        goes out while the model still takes in the ones before it)."""
        return self.generator.play(forced, emit=lambda change: self._send(deadline, [change]))
