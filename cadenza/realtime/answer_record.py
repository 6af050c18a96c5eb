"""What an answer is made of: the record the performer keeps of each (to replay it offline,
and for the latency benchmarks' stages), and the opening made before the call has ended."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar


@dataclass
class AnswerRecord:
    """What one answer was made of, to replay it offline: the generator primed with nothing,
    extended with `primer`, seeded with `seed`, steps `events` (leading time shifts included,
    though the engine skips them: the pause that ended the call stands for them)."""

    primer: list[int]
    events: list[int]
    seed: int | None
    start: float
    seconds: float
    # Stage stamps (perf_counter), for the latency benchmarks' breakdown: when this thread
    # took the command up, and when it handed the answer's first note to the scheduler.
    began: float = 0.0
    first_note: float | None = None
    opened: bool = False  # its opening was made during the silence, sent by the control thread


@dataclass
class Opening:
    """An answer's first notes, made during the silence that may end the call: the answer
    the generator would give if the call ended now, timed from 0. When the phrase does end,
    the control thread sends them at once (play_opening) and the performer goes on from
    them; if the player plays on instead, the generator is put back as it was."""

    heard: int  # the control thread's count of the player's messages this answers
    seed: int | None
    snapshot: object  # the generator before the opening
    events: list[int]
    messages: list[tuple[float, list[int]]]  # (seconds from the answer's start, message)
    claimed: bool = False
    sent_at: float = 0.0  # when the control thread scheduled it

    seconds: ClassVar[float] = 0.1  # of the answer made ahead: enough for the performer to
    # take over with its look-ahead before they have been played
