"""cadenza.realtime.ports against a real JACK server: virtual ports, ports by name, the input
queue under a flood, port loss and reconnection."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
import uuid

import pytest
import rtmidi

from cadenza.errors import CadenzaError
from cadenza.realtime import ports
from cadenza.realtime.ports import PortClosedError, open_input, open_output
from tests.realtime.helpers import jack_port_names


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"




def wait_until(predicate, timeout: float = 10.0) -> bool:
    give_up = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > give_up:
            return False
        time.sleep(0.005)
    return True


def run_child(script: str) -> str:
    """Run `script` in a child process against the test's JACK server: a crash or a hang there
    fails the calling test instead of taking pytest down. Returns its stdout."""
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], capture_output=True,
                            text=True, timeout=120, env={**os.environ, "CADENZA_MIDI_API": "jack"})
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return result.stdout


# ----- choosing the API -----


def test_env_var_forces_jack(jack_server):
    assert ports.choose_api() == rtmidi.API_UNIX_JACK
    assert ports.list_ports()["api"] == "jack"


def test_unknown_env_value_is_a_one_line_error(monkeypatch):
    monkeypatch.setenv(ports.ENV_API, "pulse")
    with pytest.raises(CadenzaError, match="CADENZA_MIDI_API='pulse'") as error:
        ports.choose_api()
    assert "\n" not in str(error.value)


def test_without_env_linux_takes_alsa_else_falls_back_to_jack(jack_server, monkeypatch):
    monkeypatch.delenv(ports.ENV_API)
    monkeypatch.setattr(ports, "_chosen_api", None)
    alsa_usable = ports._api_works(rtmidi.API_LINUX_ALSA)
    assert alsa_usable == os.path.exists("/dev/snd/seq")  # the probe really tried ALSA
    expected = rtmidi.API_LINUX_ALSA if alsa_usable else rtmidi.API_UNIX_JACK
    assert ports.choose_api() == expected


def test_platform_order():
    assert ports.platform_apis("linux") == [rtmidi.API_LINUX_ALSA, rtmidi.API_UNIX_JACK]
    assert ports.platform_apis("darwin")[0] == rtmidi.API_MACOSX_CORE
    assert ports.platform_apis("win32") == [rtmidi.API_WINDOWS_MM]


@pytest.mark.parametrize("opener", [open_output, open_input])
def test_windows_virtual_port_names_loopmidi(opener):
    with pytest.raises(CadenzaError) as error:
        opener(None, api=rtmidi.API_WINDOWS_MM)
    message = str(error.value)
    assert "loopMIDI" in message and "Windows MIDI Services" in message and "\n" not in message


# ----- virtual ports -----


def test_virtual_ports_appear_in_jack_lsp_and_go_on_close(jack_server):
    out_name, in_name = unique("out"), unique("in")
    output = open_output(None, virtual_name=out_name)
    midi_in = open_input(None, virtual_name=in_name)
    listed = jack_port_names()
    assert output.name in listed and output.name.endswith(":" + out_name)
    assert midi_in.name in listed and midi_in.name.endswith(":" + in_name)
    assert output.is_alive() and midi_in.is_alive()
    output.close()
    midi_in.close()
    listed = jack_port_names()
    assert output.name not in listed and midi_in.name not in listed
    assert not output.is_alive() and not midi_in.is_alive()
    output.close()  # twice is fine
    with pytest.raises(PortClosedError):
        output.send([0x90, 60, 100])


def test_two_clients_with_one_name_get_their_real_port_names(jack_server):
    # JACK renames the second 'cadenza' client to 'cadenza-01': the name must follow.
    first = open_output(None, virtual_name=unique("same"))
    second = open_output(None, virtual_name=unique("same"))
    try:
        listed = jack_port_names()
        assert first.name in listed and second.name in listed
        assert first.name.split(":")[0] != second.name.split(":")[0]
    finally:
        first.close()
        second.close()


def test_virtual_output_reaches_a_recorder(recorder):
    with open_output(None, virtual_name=unique("out")) as output:
        recorder.connect(output.name)
        output.send([0x90, 60, 100])
        output.send([0x80, 60, 0])
        assert recorder.wait_for(2) == [[0x90, 60, 100], [0x80, 60, 0]]


def test_virtual_input_stamps_with_perf_counter(player):
    with open_input(None, virtual_name=unique("in")) as midi_in:
        player.connect(midi_in.name)
        sent_at = player.send([0x90, 64, 90])
        assert wait_until(lambda: len(midi_in) == 1)
        after = time.perf_counter()
        stamp, message = midi_in.poll()
        assert message == bytes([0x90, 64, 90])
        assert sent_at <= stamp <= after  # the stamp is on the perf_counter clock
        assert midi_in.poll() is None and midi_in.drain() == []


def test_clock_passes_sysex_and_active_sensing_do_not(player):
    with open_input(None, virtual_name=unique("in")) as midi_in:
        player.connect(midi_in.name)
        for message in ([0xF8], [0xFE], [0xF0, 0x7E, 0x7F, 0x06, 0x01, 0xF7], [0xFA], [0xF8]):
            player.send(message)
        player.send([0x90, 1, 1])  # a marker: everything before it has been delivered
        assert wait_until(lambda: len(midi_in) == 4)
        time.sleep(0.05)
        assert [m for _, m in midi_in.drain()] == [b"\xf8", b"\xfa", b"\xf8", b"\x90\x01\x01"]


# ----- ports by name -----


def test_output_connects_by_case_insensitive_substring(recorder):
    recorder.open_virtual(unique("Test-Synth"))
    with open_output(recorder.port_name.upper()[5:]) as output:
        assert output.name.endswith(":" + recorder.port_name)
        assert not output.virtual and output.is_alive()
        output.send([0x91, 70, 80])
        assert recorder.wait_for(1) == [[0x91, 70, 80]]


def test_input_connects_by_substring(player):
    player.open_virtual(unique("Keystation"))
    with open_input(player.port_name.lower()) as midi_in:
        assert midi_in.name.endswith(":" + player.port_name)
        # JACK makes the connection at one of its next cycles: play until a note comes through.
        assert wait_until(lambda: player.send([0x90, 60, 64]) and len(midi_in) > 0)
        assert midi_in.poll()[1] == bytes([0x90, 60, 64])


@pytest.mark.parametrize("opener,direction", [(open_output, "output"), (open_input, "input")])
def test_no_match_is_a_one_line_error_listing_ports(jack_server, opener, direction):
    other = open_output(None, virtual_name=unique("listed")) if direction == "input" else (
        open_input(None, virtual_name=unique("listed")))
    try:
        with pytest.raises(CadenzaError) as error:
            opener("no-such-port-xyz")
        message = str(error.value)
        assert "\n" not in message
        assert f"no MIDI {direction} port matches 'no-such-port-xyz'" in message
        assert other.name in message  # the ports one could have meant
    finally:
        other.close()


# ----- flood, loss, reconnection -----


FLOOD_PLAYER = textwrap.dedent("""
    import sys, time, rtmidi
    out = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name="flood-player")
    out.open_virtual_port(sys.argv[1])
    print("ready", flush=True)
    sys.stdin.readline()
    for start in range(0, 20_000, 500):
        for k in range(start, start + 500):
            out.send_message([0x90 | (k >> 14), (k >> 7) & 0x7F, k & 0x7F])
        time.sleep(0.006)  # about one JACK period: rtmidi's 16 KiB output ring must not overflow
    for _ in range(50):  # the end marker, repeated: a loaded machine may lose a JACK cycle
        out.send_message([0xB0, 1, 2])
        time.sleep(0.01)
    print("done", flush=True)
    sys.stdin.readline()
""")


def test_input_flood_is_bounded(jack_server):
    # The flood comes from another process, as from a keyboard or a DAW.
    name = unique("flood")
    flooder = subprocess.Popen([sys.executable, "-c", FLOOD_PLAYER, name], text=True,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert flooder.stdout.readline().strip() == "ready"
        with open_input(name, capacity=512) as midi_in:
            flooder.stdin.write("go\n")
            flooder.stdin.flush()
            assert flooder.stdout.readline().strip() == "done"
            last = bytes([0xB0, 1, 2])
            assert wait_until(lambda: midi_in._queue and midi_in._queue[-1][1] == last)
            received = midi_in.dropped + len(midi_in)
            assert 10_000 < received <= 20_050  # the flood arrived, and nothing is counted twice
            assert len(midi_in) == midi_in.capacity == 512  # memory stays bounded
            events = midi_in.drain()
            assert events[-1][1] == last  # the newest input is kept, the oldest dropped
            stamps = [stamp for stamp, _ in events]
            assert stamps == sorted(stamps)
    finally:
        flooder.stdin.close()
        flooder.wait(10)


def test_a_full_queue_drops_the_oldest_and_counts_each(player):
    with open_input(None, virtual_name=unique("in"), capacity=10) as midi_in:
        player.connect(midi_in.name)
        for k in range(30):
            player.send([0x90, k, 1])
            time.sleep(0.001)
        assert wait_until(lambda: midi_in.dropped + len(midi_in) == 30)
        time.sleep(0.05)
        assert midi_in.dropped == 20
        assert [m[1] for _, m in midi_in.drain()] == list(range(20, 30))


def test_closing_inputs_under_a_flood_neither_hangs_nor_crashes(jack_server):
    # The deadlock and the use-after-free described in ports.py, in a child process: a crash
    # or a hang there fails this test instead of taking pytest down.
    script = """
        import threading, time, rtmidi
        from cadenza.realtime.ports import open_input
        out = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name="flooder")
        out.open_virtual_port("flood-source")
        stop = False
        def flood():
            while not stop:
                for k in range(300):
                    out.send_message([0x90, k % 128, 1])
                time.sleep(0.002)
        thread = threading.Thread(target=flood)
        thread.start()
        received = 0
        for trial in range(60):
            port = open_input("flood-source", capacity=64)
            time.sleep(0.02)
            received += len(port) + port.dropped
            if trial % 2:
                port.reconnect_if_back()  # connected: must be a no-op
            port.close()
        stop = True
        thread.join()
        assert received > 0, "no flood arrived"
        print("ok", received)
    """
    assert run_child(script).startswith("ok")


def test_an_input_whose_port_cannot_open_is_a_clear_error_and_stops_its_reader(jack_server):
    # The reader starts before the port opens; freeing the client under it segfaulted.
    out = run_child("""
        import threading, time
        from cadenza.realtime.ports import PortError, open_input
        try:
            open_input(None, virtual_name="x" * 400)  # longer than JACK allows
        except PortError as error:
            print("error:", str(error).splitlines()[0][:60])
        time.sleep(0.05)
        print("readers:", [t.name for t in threading.enumerate() if t.name == "cadenza-midi-in"])
    """)
    assert "error: cannot open virtual MIDI port 'xxx" in out
    assert "readers: []" in out


@pytest.mark.parametrize("direction", ["input", "output"])
def test_a_port_closed_while_another_thread_checks_it_does_not_crash(jack_server, direction):
    # The engine's control thread asks is_alive() and reconnect_if_back() of ports connected
    # by name; a close() on another thread between its closed check and its rtmidi call
    # freed the client under it.
    out = run_child(f"""
        import threading, time, rtmidi
        from cadenza.realtime.ports import open_input, open_output
        other = rtmidi.{"MidiOut" if direction == "input" else "MidiIn"}(
            rtmidi.API_UNIX_JACK, name="other")
        other.open_virtual_port("far-end")
        answers = []
        for trial in range(30):
            port = open_{direction}("far-end")
            def check(port=port):
                while not port.closed:
                    answers.append(port.is_alive())
                    port.reconnect_if_back()
                answers.append(port.is_alive())
            thread = threading.Thread(target=check)
            thread.start()
            time.sleep(0.002 * (trial % 5))
            port.close()
            thread.join()
        print("ok", answers.count(True), answers[-1])
    """)
    assert out.startswith("ok") and out.split()[-1] == "False"


def test_lost_input_reconnects_when_the_port_is_back(make_player):
    name = unique("pulled-cable")
    first = make_player().open_virtual(name)
    with open_input(name) as midi_in:
        # JACK makes a connection at one of its next cycles: play until a note comes through
        # (send returns its time, never 0).
        assert wait_until(lambda: first.send([0x90, 60, 1]) and len(midi_in) > 0)
        first.close()
        assert not midi_in.is_alive()
        assert midi_in.reconnect_if_back() is False  # nothing to reconnect to yet
        second = make_player().open_virtual(name)
        assert midi_in.reconnect_if_back() is True
        assert midi_in.is_alive() and midi_in.reconnects == 1
        assert midi_in.reconnect_if_back() is False  # already connected
        assert {m for _, m in midi_in.drain()} == {bytes([0x90, 60, 1])}
        assert wait_until(lambda: second.send([0x90, 62, 1]) and len(midi_in) > 0)
        assert {m for _, m in midi_in.drain()} == {bytes([0x90, 62, 1])}


def test_lost_output_raises_until_reconnected(make_recorder):
    name = unique("synth")
    first = make_recorder().open_virtual(name)
    with open_output(name) as output:
        output.send([0x90, 60, 1])
        first.wait_for(1)
        first.close()
        assert not output.is_alive()
        assert output.reconnect_if_back() is False
        with pytest.raises(PortClosedError, match="lost"):
            output.send([0x80, 60, 0])
        second = make_recorder().open_virtual(name)
        assert output.reconnect_if_back() is True and output.is_alive()
        output.send([0x90, 61, 1])
        assert second.wait_for(1) == [[0x90, 61, 1]]


def test_what_is_sent_at_once_after_connecting_or_reconnecting_arrives(make_recorder):
    # JACK makes a connection at one of its next cycles: the port holds its sends until then,
    # or the first message (a note-off, say) would be lost to a synth plugged back.
    for _ in range(6):
        name = unique("synth")
        synth = make_recorder().open_virtual(name)
        with open_output(name) as output:
            output.send([0x90, 60, 1])
            assert synth.wait_for(1, timeout=2) == [[0x90, 60, 1]]
            synth.close()
            assert output.reconnect_if_back() is False  # the loss noticed
            synth = make_recorder().open_virtual(name)
            assert output.reconnect_if_back() is True
            output.send([0x80, 60, 0])
            assert synth.wait_for(1, timeout=2) == [[0x80, 60, 0]]
