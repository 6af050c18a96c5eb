"""The words of an events report: the markdown tables and pages `cadenza eval` writes, and
its results.json, from the figures report.py computed."""

from __future__ import annotations

import json
import math
from pathlib import Path

from cadenza.eval.melody import repetition_lines

REFERENCE = "real held-out, half vs half"


def write_results(path: Path, results: dict) -> None:
    def clean(value):
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items() if not k.startswith("_")}
        if isinstance(value, list | tuple):
            return [clean(v) for v in value]
        if isinstance(value, float) and math.isnan(value):
            return None
        return value

    path.write_text(json.dumps(clean(results), indent=1) + "\n")


def number(value: float | None, digits: int = 3) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else (
        f"{value:.{digits}f}")


def mean_and_spread(pair) -> str:
    return f"{number(pair[0])} ± {number(pair[1])}"


FIGURE_NAMES = {
    "pitch_class_entropy": "PC entropy",
    "scale_consistency": "scale cons.",
    "polyphony": "polyphony",
    "note_polyphony": "notes sounding",
    "pitch_range": "pitch range",
    "empty_beat_rate": "empty beats",
    "groove_consistency": "groove cons.",
    "groove_consistency_16th": "groove 16th",
}


def summary_rows(results: list[dict]) -> list[str]:
    """The compare table: the reference (real half vs half) first, then one row per bundle."""
    header = ["set", "NLL", "bigram", "trigram", "mean OA ↑", "mean KL ↓",
              *FIGURE_NAMES.values(), "style (critic)"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]

    def row(label, likelihood, comparison, figures, styles):
        cells = [label]
        cells += [number(likelihood[k]) if likelihood else "–"
                  for k in ("nll", "bigram", "trigram")]
        cells += [number(comparison["mean_overlap"]), number(comparison["mean_kl"])]
        cells += [number(figures[name][0], 2) for name in FIGURE_NAMES]
        cells.append(", ".join(f"{k} {v}" for k, v in styles.items() if v) if styles else "–")
        lines.append("| " + " | ".join(cells) + " |")

    first = results[0]
    styles = first["styles"]
    row(f"{REFERENCE} ({first['data']})", None, first["reference"],
        first["comparison"]["figures_real"], styles and styles["real"])
    for r in results:
        row(f"{r['name']} ({r['plugin']})", r["likelihood"], r["comparison"],
            r["comparison"]["figures_generated"], r["styles"] and r["styles"]["generated"])
    return lines


def feature_table(comparison: dict, labels: tuple[str, str]) -> list[str]:
    lines = [
        f"| feature | intra {labels[0]} | intra {labels[1]} | inter | KL ↓ | OA ↑ |",
        "|---|---|---|---|---|---|",
    ]
    for row in comparison["features"]:
        lines.append(
            f"| {row['feature'].replace('_', ' ')} | {mean_and_spread(row['intra_real'])} | "
            f"{mean_and_spread(row['intra_generated'])} | {mean_and_spread(row['inter'])} | "
            f"{number(row['kl'])} | {number(row['overlap'])} |"
        )
    return lines


def bundle_report(results: dict, pictures: dict[str, str]) -> str:
    s = results["settings"]
    lk = results["likelihood"]
    kinds = [x["kind"] for x in results["samples"]]
    lines = [
        f"# Evaluation of {results['name']} ({results['plugin']})",
        "",
        f"Bundle `{results['bundle']}`, held-out data `{results['data']}` "
        f"({s.get('split', 'test')} split), "
        f"{len(kinds)} samples of {s['seconds']:g} s ({kinds.count('primer')} continuing the "
        f"first {s['primer_seconds']:g} s of held-out pieces, {kinds.count('scratch')} from "
        f"nothing), seed {s['seed']}, against {results['real_windows']} real windows of "
        f"{s['seconds']:g} s; rhythm figures at {60 / s['beat_seconds']:g} bpm. "
        f"Took {results['seconds']:g} s.",
        "",
        "## Summary",
        "",
        f"Held-out NLL in nats/event over {lk['events']:,} events; the n-gram baselines are "
        "fitted on the train split (bigram: one event of context, trigram: two). OA and KL: "
        "Yang & Lerch's overlapped area and KL divergence between the real set's intra-set "
        "distances and the inter-set distances, averaged over the features below. The "
        "figures are MusPy's (polyphony: pitches sounding; groove cons.: 24 steps a beat), "
        "averaged over the set (the first row: all real windows); two are Cadenza's own: "
        "notes sounding (a unison counts twice, no grid) and groove 16th (MusPy's groove on "
        "a 16th-note grid). docs/EVAL.md says what each means.",
        "",
        *summary_rows([results]),
        "",
    ]
    if results.get("repetition"):
        lines += repetition_lines(results["repetition"])
    if results["styles"]:
        st = results["styles"]
        lines += [f"Style critic `{st['critic']}` (held-out accuracy "
                  f"{number(st['test_accuracy'])}): the style it hears in each sample.", ""]
    lines += [
        "## Features (Yang & Lerch 2018)",
        "",
        "Distances between pieces (mean ± std) for each feature, real held-out windows "
        "against the generated samples:",
        "",
        *feature_table(results["comparison"], ("real", "generated")),
        "",
        "The reference, real held-out pieces split in two halves by piece:",
        "",
        *feature_table(results["reference"], ("half A", "half B")),
        "",
        "## Pictures",
        "",
    ]
    for title, path in pictures.items():
        lines += [f"### {title}", "", f"![{title}]({path})", ""]
    return "\n".join(lines)
