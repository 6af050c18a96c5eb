"""Real-time scheduling for the engine's own threads, where the OS grants it.

On a loaded machine an ordinary thread waits behind every other busy process for its turn on
a core: the moment a phrase ends, or a note is due, it may not run for milliseconds. With the
SCHED_FIFO policy it runs as soon as it is ready, ahead of ordinary processes. Linux grants
it to root and to users with an rtprio limit (the `audio` group of a JACK setup:
/etc/security/limits.d/audio.conf); elsewhere (macOS, Windows, a user without the limit) the
call is refused and the engine runs as before.

Only the threads that wait and then act at once take it: the control thread (a phrase's end,
its opening sent) and the scheduler (a note's deadline; on time from the OS, it no longer
spins). They run for microseconds at a time. The generation thread works in bursts of tens of
milliseconds a second ahead of playback: on SCHED_FIFO it would take a core from the MIDI
system itself (a JACK started without real-time, as in the tests, runs ordinary threads). The
level stays under JACK's own (its server thread runs at 10 by default, its clients' process
threads just under it).
"""

from __future__ import annotations

import os

CONTROL = 3  # the control loop (phrase ends, openings) and the scheduler (deadlines)
REALTIME_POLICIES = {getattr(os, name) for name in ("SCHED_FIFO", "SCHED_RR") if hasattr(os, name)}


def midi_system_realtime() -> bool:
    """A thread of this process already runs on a real-time policy: the process thread of a
    client of a real-time JACK, which delivers our input and takes our output. Only then do
    the engine's threads go real-time: above an ordinary MIDI system's threads (a JACK started
    without real-time, ALSA's input thread) they would delay the very messages they wait for
    (measured: a DAW's clock then arrived doubled and its notes lost)."""
    try:
        threads = os.listdir("/proc/self/task")  # Linux; elsewhere nothing to ask
    except OSError:
        return False
    for thread in threads:
        try:
            if os.sched_getscheduler(int(thread)) in REALTIME_POLICIES:
                return True
        except (AttributeError, OSError, ValueError):  # gone meanwhile, or no such call
            continue
    return False


def raise_priority(level: int) -> bool:
    """Put the calling thread on SCHED_FIFO at `level`; True when the OS granted it."""
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(level))
    except (AttributeError, OSError):  # no such call here, or no right to it
        return False
    return True


def ordinary_priority() -> None:
    """Back to the ordinary policy (the control thread is the caller's own thread)."""
    try:
        os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
    except (AttributeError, OSError):
        pass
