"""Continue a primer with a performance-event generator: the job behind `cadenza generate`."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cadenza.plugins.performance_rnn import PerformanceRNN

EVENTS_PER_SECOND_LIMIT = 200  # a model that never advances time must still stop


@dataclass
class Continuation:
    notes: np.ndarray  # the primer followed by its continuation
    primer_seconds: float  # where the continuation starts
    events: np.ndarray  # the generated events only


def continue_primer(generator: PerformanceRNN, primer: np.ndarray, seconds: float) -> Continuation:
    """Prime with the primer's events, sample until `seconds` of music have been generated."""
    codec = generator.codec
    primer_events = codec.encode(primer)
    generator.prime(primer_events)
    target_steps = int(round(seconds * codec.steps_per_second))
    events: list[int] = []
    steps = 0
    budget = int(seconds * EVENTS_PER_SECOND_LIMIT) + 100
    while steps < target_steps and len(events) < budget:
        event = generator.step()
        events.append(event)
        if codec.time_shift < event <= codec.velocity:
            steps += event - codec.time_shift
    generated = np.array(events, dtype=np.int16)
    notes = codec.decode(np.concatenate([primer_events, generated]))
    return Continuation(notes=notes, primer_seconds=codec.seconds(primer_events), events=generated)
