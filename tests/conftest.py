"""Shared fixtures: a tiny real corpus, a tiny trained model and its exported bundle.

Everything here is real: music21's chorales through our MIDI path, a model trained for a
few dozen steps, an ONNX graph run by onnxruntime. Built once per test session.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import TINY_MELODY_RNN, TINY_TRANSFORMER, TINY_VAE, built_once, tiny_config


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory) -> Path:
    from cadenza.corpus.prepare import prepare_corpus

    return built_once(tmp_path_factory, "corpus", lambda out: prepare_corpus(
        "music21:bach", out, limit=12, augment=False, jobs=2, progress=False))


@pytest.fixture(scope="session")
def tiny_run(tiny_corpus: Path, tmp_path_factory) -> Path:
    from cadenza.training.loop import train

    return built_once(tmp_path_factory, "run",
                      lambda out: train(tiny_config(tiny_corpus, out), progress=False))


@pytest.fixture(scope="session")
def tiny_bundle(tiny_run: Path, tmp_path_factory) -> Path:
    from cadenza.export.checkpoint import export_checkpoint

    return built_once(tmp_path_factory, "bundle", lambda out: export_checkpoint(
        tiny_run / "best.pt", out / "tiny", name="tiny")) / "tiny"


def train_tiny_transformer(corpus: Path, out: Path) -> Path:
    """30 steps of a tiny transformer on `corpus` (events or parts: the corpus says which)."""
    from cadenza.training.config import load_config
    from cadenza.training.loop import train

    config = load_config(
        None,
        [f"data={corpus}", f"out={out}", "max_steps=30", "eval_every=15", *TINY_TRANSFORMER],
        kind="transformer",
    )
    train(config, progress=False)
    return out


@pytest.fixture(scope="session")
def tiny_transformer_run(tiny_corpus: Path, tmp_path_factory) -> Path:
    return built_once(tmp_path_factory, "transformer-run",
                      lambda out: train_tiny_transformer(tiny_corpus, out))


def export_tiny(run: Path, tmp_path_factory, name: str) -> Path:
    from cadenza.export.checkpoint import export_checkpoint

    return built_once(tmp_path_factory, f"bundle-{name}", lambda out: export_checkpoint(
        run / "best.pt", out / name, name=name)) / name


@pytest.fixture(scope="session")
def tiny_transformer_bundle(tiny_transformer_run: Path, tmp_path_factory) -> Path:
    return export_tiny(tiny_transformer_run, tmp_path_factory, "tiny-transformer")


@pytest.fixture(scope="session")
def tiny_parts_corpus(tmp_path_factory) -> Path:
    """Chorales as parts on the grid (soprano = player; alto, tenor, bass = backing)."""
    from cadenza.corpus.prepare import prepare_corpus

    return built_once(tmp_path_factory, "parts-corpus", lambda out: prepare_corpus(
        "music21:bach", out, limit=12, augment=False, jobs=2, progress=False,
        representation="parts",
    ))


@pytest.fixture(scope="session")
def tiny_backing_run(tiny_parts_corpus: Path, tmp_path_factory) -> Path:
    return built_once(tmp_path_factory, "backing-run",
                      lambda out: train_tiny_transformer(tiny_parts_corpus, out))


@pytest.fixture(scope="session")
def tiny_backing_bundle(tiny_backing_run: Path, tmp_path_factory) -> Path:
    return export_tiny(tiny_backing_run, tmp_path_factory, "tiny-backing")


@pytest.fixture(scope="session")
def chorale_midi(tmp_path_factory) -> Path:
    """A real MIDI file: a Bach chorale through music21's MIDI writer."""
    from cadenza.corpus.sources import music21_midi_bytes, resolve_source

    path = tmp_path_factory.mktemp("midi") / "chorale.mid"
    path.write_bytes(music21_midi_bytes(resolve_source("music21:bach")[0]))
    return path


@pytest.fixture(scope="session")
def tiny_vae_run(tmp_path_factory) -> Path:
    """A segment VAE trained for a few seconds on 32 chorales read onto the bar grid."""
    from cadenza.training.vae import load_vae_config
    from cadenza.training.vae_train import train

    def build(root: Path) -> None:
        config = load_vae_config(
            None,
            [f"cache={root / 'grid'}", f"out={root / 'run'}", "max_steps=40", "eval_every=20",
             *TINY_VAE],
        )
        train(config, progress=False)

    return built_once(tmp_path_factory, "vae", build) / "run"


@pytest.fixture(scope="session")
def tiny_vae_bundle(tiny_vae_run: Path, tmp_path_factory) -> Path:
    from cadenza.export.checkpoint import export_checkpoint

    return built_once(tmp_path_factory, "bundle-tiny-vae", lambda out: export_checkpoint(
        tiny_vae_run / "best.pt", out / "tiny-vae", name="tiny-vae")) / "tiny-vae"


@pytest.fixture(scope="session")
def tiny_audio_corpus(tmp_path_factory) -> Path:
    """Six chorales and six folk tunes through the GM SoundFont: 2-second captioned clips."""
    pytest.importorskip("tinysoundfont")
    from cadenza.corpus.audio import RenderSettings, render_corpus
    from cadenza.errors import CadenzaError
    from cadenza.render import find_soundfont

    try:
        find_soundfont()
    except CadenzaError as e:
        pytest.skip(str(e))
    return built_once(tmp_path_factory, "audio-corpus", lambda out: render_corpus(
        ["music21:bach", "music21:folk"], out, settings=RenderSettings(clip_seconds=2.0),
        max_pieces_per_source=6, jobs=2, progress=False,
    ))


@pytest.fixture(scope="session")
def text_encoder():
    """The real all-MiniLM-L6-v2 as cadenza ships it (package data), run in numpy."""
    pytest.importorskip("tokenizers")
    pytest.importorskip("safetensors")
    from cadenza.plugins.text_encoder import find_text_encoder

    return find_text_encoder()


@pytest.fixture(scope="session")
def tiny_codec_run(tiny_audio_corpus: Path, tmp_path_factory) -> Path:
    """A codec of a few thousand parameters trained for a few steps: real codes, poor sound."""
    from cadenza.training.codec import CodecConfig
    from cadenza.training.codec_train import load_codec_config, train

    def build(out: Path) -> None:
        config = load_codec_config(None, [
            f"data={tiny_audio_corpus}", f"out={out}", "batch_size=4", "crop_seconds=0.5",
            "max_steps=6", "eval_every=3", "eval_clips=4", "threads=1",
        ])
        config.model = CodecConfig(latent_dim=8, codebook_size=16, frame_channels=16,
                                   frame_blocks=1, dead_code_threshold=0.1)
        train(config, progress=False)

    return built_once(tmp_path_factory, "codec-run", build)


@pytest.fixture(scope="session")
def tiny_codec_lm_run(tiny_audio_corpus: Path, tiny_codec_run: Path, text_encoder,
                      tmp_path_factory) -> Path:
    from cadenza.training.codec_lm_train import load_codec_lm_config, train

    def build(out: Path) -> None:
        config = load_codec_lm_config(None, [
            f"data={tiny_audio_corpus}", f"codec={tiny_codec_run / 'best.pt'}", f"out={out}",
            "model.codebook_size=16", "model.d_model=32", "model.num_layers=2",
            "model.num_heads=2", "model.d_ff=64", "model.max_distance=64", "batch_size=8",
            "micro_batches=2", "max_steps=20", "eval_every=10", "warmup_steps=5", "threads=1",
            "text_variants=2",
        ])
        train(config, progress=False, text_encoder=text_encoder)

    return built_once(tmp_path_factory, "codec-lm-run", build)


@pytest.fixture(scope="session")
def tiny_codec_lm_bundle(tiny_codec_lm_run: Path, tmp_path_factory) -> Path:
    return export_tiny(tiny_codec_lm_run, tmp_path_factory, "tiny-codec-lm")


@pytest.fixture(scope="session")
def tiny_melody_corpus(tmp_path_factory) -> Path:
    """The first 40 of music21's monophonic tunes (Aird's Airs) as melodies on the grid."""
    from cadenza.corpus.prepare import prepare_corpus

    return built_once(tmp_path_factory, "melody-corpus", lambda out: prepare_corpus(
        "music21:tunes", out, limit=40, jobs=2, progress=False, representation="melody"))


def train_tiny_melody_rnn(corpus: Path, out: Path, variant: str) -> Path:
    from cadenza.training.melody_rnn_train import load_config, train

    train(load_config(None, [f"data={corpus}", f"out={out}", f"variant={variant}",
                             *TINY_MELODY_RNN]), progress=False)
    return out


@pytest.fixture(scope="session")
def tiny_melody_run(tiny_melody_corpus: Path, tmp_path_factory) -> Path:
    return built_once(tmp_path_factory, "melody-run",
                      lambda out: train_tiny_melody_rnn(tiny_melody_corpus, out, "lookback"))


@pytest.fixture(scope="session")
def tiny_melody_bundle(tiny_melody_run: Path, tmp_path_factory) -> Path:
    return export_tiny(tiny_melody_run, tmp_path_factory, "tiny-melody")
