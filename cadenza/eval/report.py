"""`cadenza eval`: how good a bundle is, in numbers and pictures, written to a folder.

For one bundle: its held-out NLL beside order-1 and order-2 n-gram baselines on the same
events; samples (half continuing held-out openings, half from nothing) compared with the
held-out real pieces by Yang & Lerch's features and MusPy's figures; the style critic's
verdict; piano rolls, transition matrices and distance densities; report.md and
results.json. Every report also holds the reference: the real held-out pieces split in
two halves (by piece) and compared with each other, the figures a perfect model would get.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from cadenza.bundle import load_bundle
from cadenza.corpus.prepare import corpus_representation, load_split
from cadenza.errors import CadenzaError
from cadenza.eval import metrics
from cadenza.eval.critic import StyleCritic, load_critic
from cadenza.eval.distances import compare_feature, stack_features
from cadenza.eval.features import features
from cadenza.eval.melody import is_melody, melody_held_out_nll, repetition, vocab_size
from cadenza.eval.ngram import BigramKN, TrigramKN
from cadenza.eval.plots import plot_distance_densities, plot_transition_matrices
from cadenza.eval.report_text import bundle_report, summary_rows, write_results
from cadenza.eval.request import EvalRequest, EvalSettings, corpus_of
from cadenza.eval.samples import (
    Sample,
    generate_samples,
    held_out_nll,
    held_out_pieces,
    real_windows,
    split_halves,
    split_styles,
)
from cadenza.events import PERFORMANCE
from cadenza.midi import write_midi
from cadenza.plugins import EventGenerator, load_generator
from cadenza.render import plot_piano_roll


# ------------------------------------------------------------------------------------------
def compare_sets(
    real: list[np.ndarray], generated: list[np.ndarray], settings: EvalSettings,
    *, samples: bool = True,
) -> dict:
    """Yang & Lerch's table and MusPy's figures of a generated set against a real one.

    A real window ends with its last note (a piece's last window is short); a sample lasts
    `settings.seconds`, so that a sample falling silent has empty beats. With samples=False
    the second set is real too (the reference)."""
    beat = settings.beat_seconds
    real_features = stack_features([features(n, beat) for n in real])
    generated_features = stack_features([features(n, beat) for n in generated])
    rows = [
        compare_feature(name, real_features[name], generated_features[name])
        for name in real_features
    ]
    length = settings.seconds if samples else None
    return {
        "features": [row.to_dict() for row in rows],
        "mean_overlap": float(np.mean([row.overlap for row in rows])),
        "mean_kl": float(np.mean([row.kl for row in rows])),
        "figures_real": metrics.set_figures(real, beat_seconds=beat),
        "figures_generated": metrics.set_figures(generated, beat_seconds=beat, length=length),
        "_arrays": (real_features, generated_features),  # for the pictures; not saved
    }


def truncate_split(tokens: np.ndarray, offsets: np.ndarray, max_events: int | None):
    """The first sequences of a split holding `max_events` scored events (every event but
    each sequence's first), the last one cut short: what held_out_nll scores."""
    if max_events is None:
        return tokens, offsets
    kept, scored = [0], 0
    for start, end in zip(offsets[:-1], offsets[1:], strict=True):
        if scored >= max_events:
            break
        take = min(end - start, max_events - scored + 1)
        scored += max(take - 1, 0)
        kept.append(kept[-1] + take)
    pieces = [np.asarray(tokens[s : s + n]) for s, n in zip(offsets, np.diff(kept), strict=False)]
    return np.concatenate(pieces), np.array(kept, dtype=np.int64)


class Baselines:
    """Order-1 and order-2 n-gram models fitted on a corpus's train split, once per corpus."""

    _fitted: dict[Path, tuple[BigramKN, TrigramKN]] = {}

    @classmethod
    def of(cls, corpus: Path, vocab_size: int) -> tuple[BigramKN, TrigramKN]:
        key = Path(corpus).resolve()
        if key not in cls._fitted:
            train = load_split(corpus, "train")
            cls._fitted[key] = (BigramKN(vocab_size).fit(*train),
                                TrigramKN(vocab_size).fit(*train))
        return cls._fitted[key]


def style_counts(critic: StyleCritic, pieces: list[np.ndarray]) -> dict[str, int]:
    labels, _ = critic.classify([PERFORMANCE.encode(n) for n in pieces])
    return {style: labels.count(style) for style in critic.styles}


# ------------------------------------------------------------------------------------------
def evaluate_bundle(
    bundle_path: str | Path,
    out: Path,
    *,
    data: str | Path | None = None,
    settings: EvalSettings | None = None,
    critic: StyleCritic | None = None,
    progress: bool = True,
) -> dict:
    """Evaluate one bundle into `out` (report.md, results.json, pictures, samples/*.mid)."""
    settings = settings or EvalSettings()
    settings.check()
    started = time.perf_counter()
    generator = load_generator(bundle_path, seed=settings.seed)
    if not isinstance(generator, EventGenerator):
        raise CadenzaError(f"{bundle_path}: plugin {generator.plugin!r} does not make "
                           "performance events; `cadenza eval` compares symbolic music")
    bundle = generator.bundle
    corpus = corpus_of(bundle, data)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)

    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[stage] = round(now - clock, 2)
        clock = now

    tokens, offsets = truncate_split(*load_split(corpus, settings.split), settings.nll_events)
    representation = corpus_representation(corpus)  # a melody corpus is scored per step
    if is_melody(representation):
        nll, scored = melody_held_out_nll(generator, tokens, offsets, progress=progress)
    else:
        nll, scored = held_out_nll(generator, tokens, offsets, progress=progress,
                                   styles=split_styles(corpus, settings.split))
    lap("held-out NLL (ONNX steps)")
    bigram, trigram = Baselines.of(corpus, vocab_size(representation))
    likelihood = {
        "nll": nll,
        "bigram": bigram.nll(tokens, offsets),
        "trigram": trigram.nll(tokens, offsets),
        "events": scored,
    }
    lap("n-gram baselines (fit + score)")

    pieces = held_out_pieces(corpus, settings.split)
    windows = real_windows(pieces, settings.seconds)
    real = [notes for _, notes in windows]
    samples = generate_samples(
        generator, pieces, settings.samples, settings.seconds, settings.primer_seconds,
        seed=settings.seed, progress=progress,
    )
    lap("samples")
    generated = [s.notes for s in samples]
    if sum(len(n) > 0 for n in generated) < 2:
        raise CadenzaError(f"{bundle_path}: fewer than two samples have any note")
    comparison = compare_sets(real, generated, settings)
    reference = compare_sets(*split_halves(windows), settings, samples=False)
    lap("features, metrics, distances")

    styles = None
    if critic is not None:
        styles = {
            "critic": _shown(critic.bundle.path),
            "test_accuracy": critic.accuracy,
            "generated": style_counts(critic, generated),
            "real": style_counts(critic, real),
        }
        lap("style critic")

    results = {
        "bundle": str(bundle_path),
        "name": bundle.name,
        "plugin": bundle.plugin,
        "data": str(corpus),
        "settings": {k: v for k, v in vars(settings).items()},
        "likelihood": likelihood,
        "real_windows": len(real),
        "samples": [{"name": s.name, "kind": s.kind, "notes": len(s.notes), "events": len(s.events)}
                    for s in samples],
        "comparison": comparison,
        "reference": reference,
        "styles": styles,
        # A melody corpus: how often a note repeats the bar before (the lookback's question).
        "repetition": repetition(real, generated) if is_melody(representation) else None,
    }
    for sample in samples:
        write_midi(sample.primed, out / "samples" / f"{sample.name}.mid")
    pictures = draw_pictures(out, samples, comparison, reference, settings)
    lap("pictures, MIDI files")
    results["timings"] = timings
    results["seconds"] = round(time.perf_counter() - started, 1)
    write_results(out / "results.json", results)
    (out / "report.md").write_text(bundle_report(results, pictures))
    return results


def draw_pictures(out: Path, samples: list[Sample], comparison: dict, reference: dict,
                  settings: EvalSettings) -> dict[str, str]:

    pictures: dict[str, str] = {}
    # The first few of each kind: openings continued, and samples from nothing.
    chosen = [s for s in samples if s.kind == "primer"][: (settings.piano_rolls + 1) // 2]
    chosen += [s for s in samples if s.kind == "scratch"][: settings.piano_rolls // 2]
    for sample in chosen:
        name = f"pictures/roll-{sample.name}.png"
        plot_piano_roll(sample.primed, out / name,
                        split_at=sample.primer_seconds if sample.kind == "primer" else None,
                        title=sample.name)
        pictures[f"piano roll {sample.name}"] = name
    real_features, generated_features = comparison["_arrays"]
    key = "pitch_class_transition_matrix"
    plot_transition_matrices(
        {"real (held-out)": real_features[key].mean(0),
         "generated": generated_features[key].mean(0)},
        out / "pictures/pitch-class-transitions.png",
    )
    pictures["pitch-class transitions, real vs generated"] = "pictures/pitch-class-transitions.png"
    plot_distance_densities(real_features, generated_features, out / "pictures/distances.png")
    pictures["distance densities, real vs generated"] = "pictures/distances.png"
    half_a, half_b = reference["_arrays"]
    plot_distance_densities(half_a, half_b, out / "pictures/distances-reference.png",
                            labels=("half A", "half B"))
    pictures["distance densities, reference (real half vs half)"] = (
        "pictures/distances-reference.png")
    return pictures


def _shown(path: Path) -> str:
    """A path as short as it reads: relative to the working directory when inside it."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def compare_report(results: list[dict], out: Path) -> str:
    lines = [
        "# Bundles compared",
        "",
        "Each bundle's own report is in its folder. The first row is the reference: the real "
        "held-out pieces split in two halves, compared with each other.",
        "",
        *summary_rows(results),
        "",
    ]
    for r in results:
        lines.append(f"- [{r['name']}]({r['_folder']}/report.md)")
    text = "\n".join(lines) + "\n"
    (out / "report.md").write_text(text)
    return text


def evaluate_many(
    bundles: list[str], out: Path, *, data: str | Path | None = None,
    settings: EvalSettings | None = None, critic: StyleCritic | None = None,
    progress: bool = True,
) -> list[dict]:
    """Each bundle into its own folder of `out`, then one table of them all in out/report.md.
    All are judged on one corpus: `data`, else the first bundle's training corpus."""
    data = data or corpus_of(load_bundle(bundles[0]), None)
    results = []
    used: set[str] = set()
    for path in bundles:
        # The manifest's name is someone else's text: a plain folder name, inside `out`.
        folder = load_bundle(path).safe_name
        while folder in used:
            folder += "-2"
        used.add(folder)
        if (Path(out) / folder).resolve().parent != Path(out).resolve():
            raise CadenzaError(f"{path}: bundle name {folder!r} is not a folder inside {out}")
        result = evaluate_bundle(path, Path(out) / folder, data=data, settings=settings,
                                 critic=critic, progress=progress)
        result["_folder"] = folder
        results.append(result)
    compare_report(results, Path(out))
    return results


def evaluate_events(bundle: str | Path, out: Path, request: EvalRequest) -> None:
    """`cadenza eval` of a bundle that makes performance events (the registry's evaluator of
    performance-rnn, transformer and vae): its report, or with `request.compare` one table of
    it and the others, judged on one corpus."""
    critic = load_critic(request.critic) if request.use_critic else None
    if request.compare:
        evaluate_many([bundle, *request.compare], out, data=request.data,
                      settings=request.settings, critic=critic, progress=request.progress)
    else:
        evaluate_bundle(bundle, out, data=request.data, settings=request.settings, critic=critic,
                        progress=request.progress)
