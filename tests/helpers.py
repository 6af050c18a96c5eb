"""Helpers shared by test modules (a test module never imports another test module): the
settings of the tiny models that tests/conftest.py trains, and a way to edit a bundle's
manifest. The session fixtures themselves are in tests/conftest.py."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import yaml
from filelock import FileLock

TINY_MODEL = [
    "model.embed_dim=16",
    "model.hidden_size=32",
    "model.num_layers=2",
    "seq_len=64",
    "batch_size=8",
    "warmup_steps=5",
    "seed=7",
    "threads=1",
]


def tiny_config(corpus: Path, out: Path, *extra: str):
    from cadenza.training.config import load_config

    return load_config(
        None, [f"data={corpus}", f"out={out}", "max_steps=40", "eval_every=20", *TINY_MODEL, *extra]
    )


TINY_TRANSFORMER = [
    "model.d_model=32",
    "model.num_layers=2",
    "model.num_heads=2",
    "model.d_ff=64",
    "model.max_distance=128",
    "seq_len=127",
    "batch_size=4",
    "micro_batches=2",
    "warmup_steps=5",
    "seed=7",
    "threads=1",
]


# A Melody RNN that learns something in seconds: one small layer, a high rate, no warmup.
TINY_MELODY_RNN = ["model.hidden_size=32", "model.num_layers=1", "seq_len=64", "batch_size=16",
                   "lr=0.01", "warmup_steps=1", "max_steps=40", "eval_every=20", "threads=1"]

TINY_VAE = [
    "data=music21:bach",
    "max_pieces_per_source=32",  # the fewest chorales whose valid split has two 4/4 segments
    "model.min_pitch=36",
    "model.max_pitch=84",
    "model.encoder_hidden=32",
    "model.latent=8",
    "model.decoder_hidden=32",
    "model.decoder_layers=1",
    "model.transition_hidden=32",
    "batch_size=8",
    "warmup_steps=5",
    "kl_anneal_steps=20",
    "eval_pairs=64",
    "seed=7",
    "threads=1",
    "jobs=2",  # music21 parses the 32 chorales in two processes
]


def edit_manifest(bundle_dir: Path, change) -> None:
    """Apply `change` (a function of the manifest dict) to a bundle's manifest.yaml."""
    path = bundle_dir / "manifest.yaml"
    manifest = yaml.safe_load(path.read_text())
    change(manifest)
    path.write_text(yaml.safe_dump(manifest))


def built_once(tmp_path_factory, name: str, build: Callable[[Path], object]) -> Path:
    """The folder `build(folder)` fills, made once per test run. Under pytest-xdist the first
    worker to ask builds it in the temp root all workers share and the others wait on a file
    lock: a tiny model is trained once per run, not once per worker. $CADENZA_TEST_BUILT
    names a root shared by several runs (`make test` runs pytest twice, clearing it first)."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("CADENZA_TEST_BUILT"):
        root = Path(os.environ["CADENZA_TEST_BUILT"])
    elif os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent
    folder = root / f"built-{name}"
    with FileLock(f"{folder}.lock"):
        if not (folder / ".built").is_file():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            build(folder)
            (folder / ".built").touch()
    return folder


def tiny_codec(architecture: str, seed: int, samples: int):
    """A codec of a few thousand parameters (torch), its codebooks initialised by k-means on
    `samples` of noise, in eval mode: for the codec's tests and its export's."""
    import torch  # only the codec's tests need it

    from cadenza.training.codec import Codec, CodecConfig

    torch.manual_seed(seed)
    config = CodecConfig(channels=4, latent_dim=8, codebook_size=16, residual_dilations=(1,),
                         architecture=architecture, frame_channels=16, frame_blocks=2)
    codec = Codec(config).train()
    codec(torch.randn(2, 1, samples) * 0.1)
    return codec.eval()
