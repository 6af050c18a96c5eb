"""Another bundle mid-set (cadenza.realtime.bundle_select): the select controller (--select-cc)
picks each bundle found in turn, the `n` key steps through all of them and round again, and
the status line says which."""

from __future__ import annotations

from pathlib import Path

from cadenza.realtime.bundle_select import playable_bundles
from cadenza.realtime.live import status_line
from tests.realtime.helpers import FakeRunningEngine, RunningEngine, connect, wait_for

LOAD_TIMEOUT = 30.0  # seconds to load a bundle on a busy machine: "never", not a speed target


def playing(engine) -> Path:
    return Path(engine.generator.bundle.path).resolve()


def test_the_select_cc_reaches_every_bundle_in_turn(tiny_bundle, player):
    paths = playable_bundles(Path(tiny_bundle), "call-response")
    plugins = set()
    with RunningEngine(tiny_bundle, **{"cc.bundle": 20}) as running:
        connect(running, player)
        engine = running.engine
        assert [p.resolve() for p in engine.controls.bundles.paths] == [p.resolve() for p in paths]
        for k in [*range(1, len(paths)), 0]:  # every one, then back to the first
            value = (k * 128 + 64) // len(paths)  # the middle of its range of the knob
            player.send([0xB0, 20, value])
            wait_for(lambda k=k: playing(engine) == paths[k].resolve(), LOAD_TIMEOUT,
                     f"bundle {paths[k]} never played")
            plugins.add(engine.generator.plugin)
            assert f"bundle {k + 1}/{len(paths)}" in status_line(engine)
    assert {"performance-rnn", "transformer", "vae"} <= plugins  # the vae is reached too


def test_the_n_key_steps_through_every_bundle_and_round(tiny_bundle):
    with FakeRunningEngine(tiny_bundle) as running:
        engine = running.engine
        paths = [p.resolve() for p in engine.controls.bundles.paths]
        assert len(paths) >= 3 and paths[0] == Path(tiny_bundle).resolve()
        visited = []
        for _ in paths:
            before = engine.controls.bundles.index
            engine.controls.press("n")
            wait_for(lambda before=before: engine.controls.bundles.index != before,
                     LOAD_TIMEOUT)
            visited.append(playing(engine))
    assert visited == [*paths[1:], paths[0]]
