"""The backing's loop: the last bars it played, kept to be replayed (`loop_bars`, the `l` key),
and the seam that makes a replayed bar start as it was recorded from whatever sounds now."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from cadenza.realtime.backing_types import Change, Note

DEFAULT_LOOP_BARS = 2  # the loop's length when looping is switched on with none set


@dataclass
class Bar:
    start: frozenset[Note]  # the backing notes sounding as the bar began
    steps: list[tuple[Change, ...]] = field(default_factory=list)  # the changes, step by step


class LoopRecord:
    """The last `bars` whole bars the backing played, each with the notes sounding as it
    began, to be replayed. A ring: memory stays bounded however long it plays. A bar is kept
    only if it was played whole, from its downbeat, without a jump."""

    def __init__(self, bars: int, steps_per_bar: int):
        self.bars: deque[Bar] = deque(maxlen=bars)
        self.steps_per_bar = steps_per_bar
        self._current: Bar | None = None

    @property
    def length(self) -> int:
        return self.bars.maxlen or 0

    @property
    def full(self) -> bool:
        return len(self.bars) == self.length

    def resize(self, bars: int) -> None:
        self.bars = deque(self.bars, maxlen=bars)  # keeps the most recent ones

    def clear(self) -> None:
        self.bars.clear()
        self._current = None

    def record(self, position: int, sounding: frozenset[Note] | None, changes: Sequence[Change],
               steps_per_bar: int) -> None:
        """Step `position` played `changes`; `sounding` (needed at a downbeat) is what sounded
        before them."""
        if steps_per_bar != self.steps_per_bar:  # another metre: the old bars are no loop of it
            self.clear()
            self.steps_per_bar = steps_per_bar
        if position == 0:
            self._current = Bar(sounding or frozenset())
        current = self._current
        if current is None:
            return
        if len(current.steps) != position:  # the song position jumped: no whole bar here
            self._current = None
            return
        current.steps.append(tuple(changes))
        if len(current.steps) == self.steps_per_bar:
            self.bars.append(current)
            self._current = None

    def break_bar(self) -> None:
        """The bar being recorded will not be whole (a stop)."""
        self._current = None


def seam(sounding: set[Note], start: frozenset[Note], first: Sequence[Change]) -> list[Change]:
    """The changes that make a replayed bar's first step sound as recorded, from whatever
    sounds now: notes not in the recording end, notes held into the recorded bar start again,
    and the bar's own first changes happen (a note struck there is struck again)."""
    ons = {(part, pitch) for part, pitch, on in first if on}
    ended = {(part, pitch) for part, pitch, on in first if not on}
    target = (set(start) - ended) | ons
    offs = (sounding - target) | (sounding & ons)
    starts = ons | (target - sounding)
    return [(p, q, False) for p, q in sorted(offs)] + [(p, q, True) for p, q in sorted(starts)]
