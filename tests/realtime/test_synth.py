"""SynthOutput and TeeOutput against the test JACK server's real audio device."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence

import pytest

from cadenza.errors import CadenzaError
from cadenza.realtime.ports import PortClosedError
from cadenza.realtime.synth import SynthOutput, TeeOutput
from cadenza.render import find_soundfont

NOTE_ON, NOTE_OFF, CC, PROGRAM = 0x90, 0x80, 0xB0, 0xC0
AUDIBLE, QUIET = 0.01, 1e-3  # peak sample levels (TimGM6mb's piano at velocity 100: ~0.05)
CHURCH_ORGAN = 19  # 0-based GM program: it holds its level while a key is down


def _has_soundfont() -> bool:
    try:
        find_soundfont()
    except CadenzaError:
        return False
    return True


pytestmark = pytest.mark.skipif(not _has_soundfont(),
                                reason="no SoundFont (apt-get install timgm6mb-soundfont)")


def wait_for(condition: Callable[[], bool], timeout: float = 3.0) -> bool:
    give_up = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > give_up:
            return False
        time.sleep(0.005)
    return True


@pytest.fixture
def synth(audio) -> Iterator[SynthOutput]:
    out = SynthOutput(device=audio)
    yield out
    out.close()


class RecordingOutput:
    """A second Output for the tee: keeps what it is sent."""

    name = "recording"

    def __init__(self, fail: bool = False) -> None:
        self.messages: list[list[int]] = []
        self.fail = fail
        self.closed = False

    def send(self, message: Sequence[int]) -> None:
        self.messages.append(list(message))
        if self.fail:
            raise PortClosedError("recording output is lost")

    def is_alive(self) -> bool:
        return not self.closed

    def close(self) -> None:
        self.closed = True


def test_silent_until_a_note_then_sounds(synth):
    assert synth.is_alive()
    assert wait_for(lambda: synth.frames_played >= synth.sample_rate // 10)  # the card pulls
    assert synth.peak == 0.0
    synth.send([NOTE_ON, 60, 100])
    assert wait_for(lambda: synth.peak > AUDIBLE), synth.peak
    assert synth.recent_peak() > AUDIBLE
    assert synth.name.startswith("synth: ") and synth.name.endswith(".sf2")


def test_all_notes_off_ends_the_sound(synth):
    for pitch in (60, 64, 67):
        synth.send([NOTE_ON, pitch, 100])
    assert wait_for(lambda: synth.recent_peak() > AUDIBLE)
    synth.send([CC, 123, 0])
    # The release tail of TimGM6mb's piano is about 0.4 s.
    assert wait_for(lambda: synth.recent_peak(0.02) < QUIET), synth.recent_peak(0.02)


def test_sustain_pedal_holds_released_notes(synth):
    synth.send([PROGRAM, CHURCH_ORGAN])
    synth.send([CC, 64, 127])
    synth.send([NOTE_ON, 60, 100])
    time.sleep(0.05)
    synth.send([NOTE_OFF, 60, 0])
    time.sleep(0.5)  # well past the release tail: only the pedal keeps it sounding
    assert synth.recent_peak(0.02) > AUDIBLE
    synth.send([CC, 64, 0])
    assert wait_for(lambda: synth.recent_peak(0.02) < QUIET)


def test_an_underrun_plays_silence_and_is_counted(synth):
    with synth._lock:  # the render thread cannot render: the ring runs dry
        time.sleep(0.1)
    assert synth.underruns > 0
    assert synth.is_alive()
    played = synth.frames_played
    assert wait_for(lambda: synth.frames_played > played + synth.sample_rate // 20)


def test_close_is_safe_twice_and_later_sends_raise(audio):
    out = SynthOutput(device=audio)
    out.close()
    out.close()
    assert not out.is_alive()
    with pytest.raises(PortClosedError):
        out.send([NOTE_ON, 60, 100])


def test_tee_delivers_to_both(synth):
    recording = RecordingOutput()
    tee = TeeOutput(recording, synth)
    assert tee.is_alive()
    assert tee.name == f"recording + {synth.name}"
    tee.send([NOTE_ON, 60, 100])
    tee.send([NOTE_OFF, 60, 0])
    assert recording.messages == [[NOTE_ON, 60, 100], [NOTE_OFF, 60, 0]]
    assert wait_for(lambda: synth.peak > AUDIBLE)
    tee.close()
    tee.close()
    assert recording.closed and not synth.is_alive() and not tee.is_alive()


def test_tee_sends_to_all_before_raising(synth):
    lost = RecordingOutput(fail=True)
    tee = TeeOutput(lost, synth)
    with pytest.raises(PortClosedError):
        tee.send([NOTE_ON, 60, 100])
    assert lost.messages == [[NOTE_ON, 60, 100]]
    assert wait_for(lambda: synth.peak > AUDIBLE)


def test_missing_soundfont_is_a_one_line_error(tmp_path):
    missing = tmp_path / "nowhere.sf2"
    with pytest.raises(CadenzaError, match="nowhere.sf2") as info:
        SynthOutput(str(missing))
    assert "\n" not in str(info.value)


def test_unreadable_soundfont_is_a_one_line_error(audio, tmp_path):
    bad = tmp_path / "bad.sf2"
    bad.write_bytes(b"not a soundfont")
    with pytest.raises(CadenzaError, match="bad.sf2: cannot load SoundFont") as info:
        SynthOutput(str(bad), device=audio)
    assert "\n" not in str(info.value)


def test_unknown_audio_device_is_a_one_line_error(audio):
    with pytest.raises(CadenzaError, match="no-such-card") as info:
        SynthOutput(device="no-such-card")
    assert "\n" not in str(info.value)
