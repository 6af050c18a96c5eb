"""Another bundle while playing: the `n` key steps through every bundle found that the mode
plays (cadenza.bundle.find_bundles, in order, round and round), a controller (`--select-cc`,
`cc.bundle`) picks one by its value, 128 values shared out over them.

Loading a bundle takes a while (an ONNX session per graph), so it is done on a thread of its
own: neither the control loop nor the keys wait for it, and a knob swept across its travel
loads only the bundle it comes to rest on (the latest request wins).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from cadenza.bundle import find_bundles, load_bundle
from cadenza.errors import CadenzaError
from cadenza.kinds import all_kinds
from cadenza.plugins import load_generator
from cadenza.realtime.mode import LiveMode, live_mode_of

ErrorCallback = Callable[[str, BaseException], None]


def playable_bundles(current: Path, live_mode: str | None) -> list[Path]:
    """The bundles found whose kind plays in `live_mode`, with `current` among them (first,
    when it is not one of those found)."""
    kinds = all_kinds()
    found = []
    for path in find_bundles():
        try:
            kind = kinds.get(load_bundle(path).plugin)
        except CadenzaError:  # a broken bundle in a models folder is not ours to refuse
            continue
        if kind is not None and kind.live == live_mode:
            found.append(path)
    resolved = [p.resolve() for p in found]
    return found if current.resolve() in resolved else [current, *found]


class BundleSelector:
    """Which bundle of `paths` plays; select()/step() from any thread, the loading on its own."""

    def __init__(self, mode: LiveMode, *, seed: int | None, on_error: ErrorCallback):
        self.mode = mode
        self.seed = seed
        self.on_error = on_error
        current = Path(mode.generator.bundle.path)
        self.paths = playable_bundles(current, live_mode_of(mode.generator))
        resolved = [p.resolve() for p in self.paths]
        self.index = resolved.index(current.resolve())
        self.loading: Path | None = None
        self._wanted: tuple[int, int] | None = None  # (index, direction to skip an unplayable)
        self._cond = threading.Condition()
        self._closed = False
        self._thread: threading.Thread | None = None

    def step(self, delta: int) -> None:
        """The next (delta +1) or previous bundle, from the one playing or asked for last."""
        with self._cond:
            base = self._wanted[0] if self._wanted is not None else self.index
            self._want((base + delta) % len(self.paths), 1 if delta >= 0 else -1)

    def select_cc(self, value: int) -> None:
        """A controller value 0..127: the bundles in equal ranges of its travel."""
        index = min(max(value, 0), 127) * len(self.paths) // 128
        with self._cond:
            self._want(index, 0)

    def _want(self, index: int, direction: int) -> None:
        if index == self.index and self._wanted is None:
            return
        self._wanted = (index, direction)
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="cadenza-bundles",
                                            daemon=True)
            self._thread.start()
        self._cond.notify()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()

    @property
    def label(self) -> str:
        """For the status line: which of how many, and what is loading."""
        text = f"bundle {self.index + 1}/{len(self.paths)}"
        loading = self.loading
        return f"{text} loading {loading.name}" if loading is not None else text

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._closed or self._wanted is not None)
                if self._closed:
                    return
                (index, direction), self._wanted = self._wanted, None
            if self._take(index) or direction == 0:
                continue
            with self._cond:  # not playable here (parts, a failed load): the next one
                if self._wanted is None and (index + direction) % len(self.paths) != self.index:
                    self._wanted = ((index + direction) % len(self.paths), direction)

    def _take(self, index: int) -> bool:
        path = self.paths[index]
        self.loading = path
        try:
            generator = load_generator(path, seed=self.seed)
            if self._closed or not self.mode.take(generator):
                return False
            self.index = index
            return True
        except Exception as error:  # a bundle that cannot play: the set goes on, the line says
            self.on_error(f"bundle {path.name}", error)
            return False
        finally:
            self.loading = None
