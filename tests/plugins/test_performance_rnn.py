"""The performance-rnn plugin running a real exported bundle in onnxruntime."""

from __future__ import annotations

import sys

import numpy as np

from cadenza.events import PERFORMANCE
from cadenza.generate import continue_primer
from cadenza.midi import load_notes
from cadenza.plugins import load_generator, plugin_classes
from cadenza.plugins.performance_rnn import PerformanceRNN
from cadenza.plugins.voices import Voices


def test_registered_under_the_entry_point_group():
    assert plugin_classes()["performance-rnn"] is PerformanceRNN


def test_same_seed_same_continuation(tiny_bundle):
    runs = []
    for _ in range(2):
        generator = load_generator(tiny_bundle, seed=3)
        generator.prime(np.array([PERFORMANCE.velocity + 16, 60, PERFORMANCE.time_shift + 50]))
        runs.append(generator.generate(64).tolist())
    assert runs[0] == runs[1]
    assert all(0 <= e < 388 for e in runs[0])


def test_greedy_generation_matches_the_export_parity_rollout(tiny_bundle, tiny_run):
    import torch

    from cadenza.training.loop import load_checkpoint, model_from_checkpoint
    from cadenza.training.performance_rnn import PerformanceRNNStep

    generator = load_generator(tiny_bundle)
    generator.knobs.temperature = 0.0
    generator.prime([])
    ours = generator.generate(50).tolist()
    step = PerformanceRNNStep(model_from_checkpoint(load_checkpoint(tiny_run / "best.pt")))
    h = c = torch.zeros(tuple(generator.h.shape))
    token, theirs = generator.start_event, []
    voices = Voices(generator.codec)  # the sampler's grammar, on torch's logits as on ours
    with torch.no_grad():
        for _ in range(50):
            logits, h, c = step(torch.tensor([token]), h, c)
            token = int(np.argmax(voices.mask(logits[0].numpy(), generator.knobs.max_voices)))
            voices.take([token])
            theirs.append(token)
    assert ours == theirs


def test_knobs_change_between_steps(tiny_bundle):
    generator = load_generator(tiny_bundle, seed=1)
    generator.prime([])
    generator.knobs.temperature = 0.0
    greedy_a = generator.generate(20)
    generator.prime([])
    generator.knobs.temperature = 2.0
    hot = generator.generate(20)
    assert not np.array_equal(greedy_a, hot)


def test_continuation_starts_with_the_primer_and_runs_the_requested_time(tiny_bundle, chorale_midi):
    primer = load_notes(chorale_midi)
    primer = primer[primer["start"] < 4.0]
    result = continue_primer(load_generator(tiny_bundle, seed=0), primer, seconds=5.0)
    assert result.primer_seconds == PERFORMANCE.seconds(PERFORMANCE.encode(primer))
    head = result.notes[result.notes["start"] < result.primer_seconds]
    assert len(head) >= len(primer)
    assert PERFORMANCE.seconds(result.events) >= 5.0


def test_the_runtime_never_imports_torch(tiny_bundle):
    import subprocess

    code = (
        "import sys; from cadenza.plugins import load_generator; "
        f"g = load_generator({str(tiny_bundle)!r}, seed=0); g.prime([]); g.generate(5); "
        "import cadenza.generate, cadenza.midi, cadenza.bundle; "
        "assert 'torch' not in sys.modules, 'torch was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_restoring_a_snapshot_replays_the_same_events(tiny_bundle):
    generator = load_generator(tiny_bundle, seed=4)
    generator.prime([])
    generator.generate(10)
    state = generator.snapshot()  # the random state included
    ahead = generator.generate(20).tolist()
    generator.restore(state)
    assert generator.generate(20).tolist() == ahead
