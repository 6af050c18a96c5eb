"""`cadenza eval` on a codec-lm bundle: does a prompt that names an instrument get it?

For each instrument the instrument critic knows, `clips` prompts that name it (in the words
of the corpus' captions, over its styles and tempi, and once as the bare name) generate a
clip each. The critic's recognition rate per instrument (chance: 1 / instruments) and the
Frechet distance between the generated clips' and the held-out real clips' embeddings (our
FAD) are reported, with the same figures for unconditioned audio (the null prompt) and the
real clips' own reference distance. The bundle's manifest adds the codec's and the LM's
held-out figures. Writes report.md and results.json.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from tqdm import tqdm

from cadenza.corpus.audio import STYLE_PHRASES, TEMPO_PHRASES, caption, load_clips
from cadenza.errors import CadenzaError, ConfigError
from cadenza.eval.audio import frechet_distance, load_instrument_critic
from cadenza.eval.request import EvalRequest
from cadenza.plugins import load_generator

DEFAULT_DATA = "data/audio/music21-bach+music21-palestrina+music21-folk"


def prompts_for(instrument: str, count: int) -> list[str]:
    """`count` prompts naming `instrument`: the bare name first (a user's shortest prompt),
    then the corpus' own captions of it over styles, tempi and registers."""
    worded = [
        caption(instrument, style, tempo, register)
        for register in ("middle", "low", "high")
        for style in STYLE_PHRASES
        for tempo in TEMPO_PHRASES
    ]
    return ([instrument] + worded * count)[:count]


def generate_clips(lm, prompts: list[str | None], seconds: float, progress: bool) -> np.ndarray:
    clips = []
    for prompt in tqdm(prompts, desc="codec-lm eval", disable=not progress, unit="clip"):
        lm.prime(np.zeros((lm.num_codebooks, 0), dtype=np.int64), {"prompt": prompt})
        clips.append(lm.generate_audio(seconds))
    return np.stack(clips)


def evaluate_codec_lm(
    bundle: str | Path,
    out: str | Path,
    *,
    data: str | None = None,
    clips: int = 8,
    seconds: float = 4.0,
    seed: int = 0,
    progress: bool = True,
) -> dict:
    critic = load_instrument_critic()
    if critic is None:
        raise CadenzaError(
            "no instrument critic found (a bundle `instrument-critic` in the models folder): "
            "`cadenza train instrument-critic` trains one"
        )
    lm = load_generator(bundle, plugin="codec-lm", seed=seed)
    if lm.sample_rate != critic.settings.sample_rate:
        raise CadenzaError(
            f"{bundle}: {lm.sample_rate} Hz, the critic hears {critic.settings.sample_rate} Hz"
        )
    requested = [name for name in critic.instruments for _ in range(clips)]
    prompts = [p for name in critic.instruments for p in prompts_for(name, clips)]
    generated = generate_clips(lm, prompts, seconds, progress)
    unconditioned = generate_clips(lm, [None] * clips * 2, seconds, progress)
    real, real_clips, rate = load_clips(data or DEFAULT_DATA, "test")
    real = np.asarray(real)[:, : generated.shape[1]]
    real_embedding = critic.embed(real, rate)
    rates = critic.recognition_rates(generated, lm.sample_rate, requested)
    heard_unconditioned = critic.classify(unconditioned, lm.sample_rate)[0]
    valid, _, _ = load_clips(data or DEFAULT_DATA, "valid")
    # The codec's ceiling: real test clips through its encoder and decoder, judged alike. The
    # LM can sound no more like an instrument than the codec can carry.
    ceiling = np.arange(len(real))[: len(generated)]
    resynthesised = np.stack(
        [lm.decode_codes(lm.encode(np.asarray(real[i], np.float32) / 32767)) for i in ceiling]
    )[:, : generated.shape[1]]
    instruments = [c["instrument"] for c in real_clips]
    codec_rates = critic.recognition_rates(resynthesised, rate, [instruments[i] for i in ceiling])
    results = {
        "bundle": str(bundle),
        "clips_per_instrument": clips,
        "seconds": seconds,
        "chance": round(1 / len(critic.instruments), 4),
        "recognition": {k: round(v, 3) for k, v in rates.items()},
        "recognition_mean": round(float(np.mean(list(rates.values()))), 3),
        "unconditioned_heard_as": {
            n: heard_unconditioned.count(n) for n in set(heard_unconditioned)
        },
        "frechet_generated_test": round(
            frechet_distance(critic.embed(generated, rate), real_embedding), 3
        ),
        "frechet_unconditioned_test": round(
            frechet_distance(critic.embed(unconditioned, rate), real_embedding), 3
        ),
        "frechet_valid_test": round(
            frechet_distance(
                critic.embed(np.asarray(valid)[:, : generated.shape[1]], rate), real_embedding
            ),
            3,
        ),
        "codec_recognition": {k: round(v, 3) for k, v in codec_rates.items()},
        "codec_recognition_mean": round(float(np.mean(list(codec_rates.values()))), 3),
        "frechet_codec_test": round(
            frechet_distance(critic.embed(resynthesised, rate), real_embedding), 3
        ),
        "critic_test_accuracy": critic.accuracy,
        "training": lm.bundle.training,
    }
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "report.md").write_text(report(results))
    return results


def report(results: dict) -> str:
    rows = "\n".join(
        f"| {name} | {rate:.2f} | {results['codec_recognition'].get(name, 0):.2f} |"
        for name, rate in results["recognition"].items()
    )
    return f"""# codec-lm: {results["bundle"]}

{results["clips_per_instrument"]} clips of {results["seconds"]} s per instrument, each from a
prompt naming it; the instrument critic (held-out accuracy {results["critic_test_accuracy"]})
says which instrument it hears. Chance: {results["chance"]:.2f}.

| requested instrument | recognised | real clips through the codec (its ceiling) |
|---|---|---|
{rows}
| **mean** | **{results["recognition_mean"]:.2f}** | **{results["codec_recognition_mean"]:.2f}** |

Frechet distance on the critic's embeddings to the held-out (test) real clips: generated
{results["frechet_generated_test"]}, unconditioned {results["frechet_unconditioned_test"]},
real test clips through the codec {results["frechet_codec_test"]}, real valid clips
{results["frechet_valid_test"]} (the reference).
"""


def evaluate(bundle: str | Path, out: Path, request: EvalRequest) -> None:
    """The registry's evaluator of codec-lm bundles: the instrument critic's check."""
    if request.compare:
        raise ConfigError("--compare", "codec-lm bundles are evaluated one at a time")
    if request.settings.split != "test":  # its valid clips are the reference it is judged by
        raise ConfigError("--split", "codec-lm bundles are checked on the test split only")
    evaluate_codec_lm(bundle, out, data=request.data, seed=request.seed,
                      progress=request.progress)
