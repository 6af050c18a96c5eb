"""`cadenza live`: open the generator and the ports, run the engine, end cleanly.

Ctrl-C, SIGTERM and SIGHUP stop the engine through the same path as any other stop, so every note
it started gets its note-off; a failure in the generator or a lost output port does too.
"""

from __future__ import annotations

import signal
import sys
import threading
import time

from cadenza.errors import BundleError, CadenzaError, ConfigError
from cadenza.plugins import load_generator
from cadenza.realtime.config import LiveConfig
from cadenza.realtime.controls import KEYS_HELP
from cadenza.realtime.engine import LiveEngine
from cadenza.realtime.inputs import InputPorts
from cadenza.realtime.keys import TerminalKeys
from cadenza.realtime.link import import_link
from cadenza.realtime.modes import mode_for
from cadenza.realtime.offset import clamped_note
from cadenza.realtime.ports import ChannelRouter, MidiInput, MidiOutput, open_input, open_output

STATUS_PERIOD = 0.5  # seconds between status-line updates
# Signals that end a set cleanly (every note ended); SIGHUP exists on POSIX only.
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP")
                     if hasattr(signal, name))


STATUS_WIDTH = 140  # characters of the status line


def status_line(engine: LiveEngine) -> str:
    lateness = engine.scheduler.lateness_stats()
    late = f"late p99 {lateness['p99'] * 1e3:.2f} ms" if lateness["count"] else "late -"
    dropped = engine.dropped
    if dropped:  # malformed input, or a flood over the queues: counted, never fatal
        late += f" | dropped {dropped}"
    line = engine.mode.status(late)
    bundles = engine.controls.bundles
    if len(bundles.paths) > 1:
        line += f" | {bundles.label}"
    recording = engine.recorder.status(time.perf_counter())
    if recording:
        line += f" | {recording}"
    if engine.controls.error is not None:
        line += f" | {engine.controls.error}"
    return line


def _status_thread(engine: LiveEngine, stop: threading.Event) -> threading.Thread:
    """Prints from its own thread: the control and scheduler threads never wait on a tty."""

    def run() -> None:
        while not stop.wait(STATUS_PERIOD):
            sys.stderr.write("\r" + status_line(engine)[:STATUS_WIDTH].ljust(STATUS_WIDTH))
            sys.stderr.flush()
        sys.stderr.write("\n")

    thread = threading.Thread(target=run, name="cadenza-status", daemon=True)
    thread.start()
    return thread


def live_generator(config: LiveConfig):
    """The generator `config` plays, checked against its mode, parts and style before any
    port opens."""
    backing = config.mode == "backing"
    default_plugin = None if config.bundle else "backing" if backing else "performance-rnn"
    generator = load_generator(config.bundle, plugin=config.plugin or default_plugin,
                               seed=config.seed)
    mode_for(generator, config)  # a generator the mode cannot play
    if backing:  # a channel or velocity per part
        config.backing_channel_indices(generator.parts.parts)
        config.backing_velocities(generator.parts.parts)
        config.backing_program_list(generator.programs, generator.parts.names)
    if config.style is not None:
        try:
            generator.set_style(config.style)
        except BundleError as e:
            raise ConfigError("style", str(e)) from None
    if config.style_guidance is not None:
        try:
            generator.set_style_guidance(config.style_guidance)
        except BundleError as e:
            raise ConfigError("style_guidance", str(e)) from None
    return generator


def open_engine(config: LiveConfig) -> LiveEngine:
    """The generator and the ports of `config`, in an engine ready to run."""
    if config.link:
        import_link()  # a missing binding is an error at once, before any model or port opens
    generator = live_generator(config)
    backing = config.mode == "backing"
    name = config.port_name
    midi_out = open_output(config.output_port, virtual_name=f"{name} out", client_name=name)
    opened: list[MidiOutput | MidiInput] = [midi_out]
    try:
        if backing and config.backing_ports:
            channels = config.backing_channel_indices(generator.parts.parts)
            routes = {}
            for part, channel in enumerate(channels):
                part_name = generator.parts.names[part]
                routes[channel] = open_output(None, virtual_name=f"{name} {part_name}",
                                              client_name=name)
                opened.append(routes[channel])
            midi_out = ChannelRouter(midi_out, routes)
        midi_in = open_inputs(config, opened)
    except BaseException:
        for port in opened:
            port.close()
        raise
    return LiveEngine(config, generator, midi_in, midi_out)


def open_inputs(config: LiveConfig, opened: list[MidiOutput | MidiInput]
                ) -> MidiInput | InputPorts:
    """The input port (virtual, or one --in), or several read as one, each with its roles;
    every port opened is added to `opened` (closed by the caller if a later one fails)."""
    name = config.port_name
    routes = config.input_routes
    if len(routes) <= 1 and all(not route.named_roles for route in routes):
        pattern = routes[0].pattern if routes else None
        opened.append(open_input(pattern, virtual_name=f"{name} in", client_name=name))
        return opened[-1]
    ports = []
    for k, route in enumerate(routes):
        local = f"{name} in" if k == 0 else f"{name} in {k + 1}"
        port = open_input(route.pattern, virtual_name=local, client_name=name)
        opened.append(port)
        ports.append((port, route.roles))
    return InputPorts(ports, config.knob_controllers)


def run_live(config: LiveConfig) -> LiveEngine:
    """Run until Ctrl-C, SIGTERM or SIGHUP (the terminal closed, the ssh session dropped);
    main thread only: it installs the signal handlers."""
    # The handlers go in before the ports open: a signal while they open (as soon as the
    # ports are seen) stops the engine the moment it exists, rather than a traceback.
    stopping = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stopping.set()) for sig in STOP_SIGNALS}
    try:
        engine = open_engine(config)
    except BaseException:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        raise
    for sig in STOP_SIGNALS:
        signal.signal(sig, lambda *_: engine.stop())
    if stopping.is_set():
        engine.stop()
    stop_status = threading.Event()
    status = None if config.quiet else _status_thread(engine, stop_status)
    note = clamped_note(config)
    if note is not None:
        print(note, file=sys.stderr)
    keys = TerminalKeys(engine.controls)
    if keys.start() and not config.quiet:
        print(KEYS_HELP, file=sys.stderr)
    if not config.quiet:
        channels = f"channel {config.output_channel}{engine.mode.banner()}"
        print(
            f"cadenza live: {config.mode}, in '{engine.midi_in.name}', out "
            f"'{engine.midi_out.name}' ({channels}); Ctrl-C to stop",
            file=sys.stderr,
        )
    try:
        engine.run()
    finally:
        keys.stop()
        stop_status.set()
        if status is not None:
            status.join(timeout=1.0)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        engine.close_ports()
    if engine.stats.error is not None:
        raise CadenzaError(engine.stats.error)
    return engine
